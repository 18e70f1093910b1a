"""On-call status: what is down, what failed and what is about to break, from the store.

Evaluated by ``cockpit status`` and the TUI's overview alike; nothing here imports Textual
or opens a connection unless asked to refresh first.
"""
