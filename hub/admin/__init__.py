"""The admin dashboard (/admin) and its settings; the JSON API lives in `hub.api`."""
