"""The `sources.gcal` settings schema: what switchboard.yaml may say about Google Calendar."""

from __future__ import annotations

from typing import Any

from connectors.base import SECRET_REF_SCHEMA
from hub.sources._gcal_api import API_URL, TOKEN_URL

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    # A service account replaces the user's OAuth client and refresh token.
    "not": {
        "anyOf": [
            {"required": ["service_account", "refresh_token"]},
            {"required": ["service_account", "client_secret"]},
        ]
    },
    "properties": {
        "calendars": {
            "type": "object",
            "description": "Calendar id → what its events are, e.g. {kind: review}; "
            "becomes `entity.kind` (default: calendar_event).",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind"],
                "properties": {"kind": {"type": "string", "minLength": 1}},
            },
            "examples": [{"team@group.calendar.google.com": {"kind": "review"}}],
        },
        "client_id": {
            "oneOf": [{"type": "string"}, SECRET_REF_SCHEMA],
            "description": "OAuth client id used by the worker to list events.",
            "examples": ["1234567890-abc.apps.googleusercontent.com"],
        },
        "client_secret": {
            **SECRET_REF_SCHEMA,
            "description": "OAuth client secret (a secret reference).",
            "examples": [{"env": "GOOGLE_CLIENT_SECRET"}],
        },
        "refresh_token": {
            **SECRET_REF_SCHEMA,
            "description": "Refresh token with calendar.readonly or calendar.events scope.",
            "examples": [{"env": "GOOGLE_REFRESH_TOKEN"}],
        },
        "service_account": {
            **SECRET_REF_SCHEMA,
            "description": "Service account JSON key (a secret reference), instead of "
            "client_id, client_secret and refresh_token; the calendars must be shared "
            "with it, or set subject.",
            "examples": [{"file": "secrets/gcal-service-account.json"}],
        },
        "subject": {
            "type": "string",
            "description": "With service_account: the Workspace user to act as "
            "(domain-wide delegation), to read that user's calendars.",
            "examples": ["ada@example.com"],
        },
        "api_url": {
            "type": "string",
            "description": "Calendar API base URL (for a proxy or a test double).",
            "default": API_URL,
            "examples": [API_URL],
        },
        "token_url": {
            "type": "string",
            "description": "OAuth token endpoint (for a test double).",
            "default": TOKEN_URL,
            "examples": [TOKEN_URL],
        },
        "coalesce_window": {
            "type": ["string", "number"],
            "description": "Notifications for one calendar this close together are synced once.",
            "default": "2s",
            "examples": ["2s"],
        },
        "reconcile_interval": {
            "type": ["string", "number"],
            "description": "Every watched calendar is also synced this often, catching "
            "changes whose push never came (Google does not promise delivery); 0 turns "
            "it off. Runs in the scheduler (serve, or switchboard scheduler).",
            "default": "5m",
            "examples": ["5m", "15m", 0],
        },
    },
}
