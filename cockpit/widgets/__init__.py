"""Cockpit's own widgets (one module each)."""
