"""SQL migrations shipped with Cockpit (data files)."""
