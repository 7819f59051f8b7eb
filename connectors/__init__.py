"""Destination connectors, one module each; see connectors/base.py for the plugin API."""
