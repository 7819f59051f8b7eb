"""Webhook sources, one module each; see hub/sources/base.py for the plugin API."""
