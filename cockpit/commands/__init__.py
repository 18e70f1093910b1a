"""The CLI command groups, one module each (registered by cockpit.cli)."""
