"""Who may do what, shared by the dashboard (/admin) and the JSON API (/api/v1)."""
