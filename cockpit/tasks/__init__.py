"""Task kinds beyond the engine's own: what Cockpit does to servers, platforms and sites.

Each module holds the recipes of one kind of target and registers them through the
``cockpit.tasks`` entry point group, exactly as a third-party package would. Recipes
call the backends (transports, service plugins, platforms); they never import Textual.
"""
