"""Cockpit: a keyboard-driven terminal cockpit for hosting many web sites on many servers."""

__version__ = "0.1.0"
