"""Cockpit's screens: one module per view."""
