"""The `sources.notion` settings schema: what switchboard.yaml may say about Notion."""

from __future__ import annotations

from typing import Any

from connectors.base import SECRET_REF_SCHEMA

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "databases": {
            "type": "object",
            "description": "Database or data source id → what its pages are, e.g. "
            "{kind: task}; becomes `entity.kind` (default: page).",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind"],
                "properties": {"kind": {"type": "string", "minLength": 1}},
            },
            "examples": [{"8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80": {"kind": "task"}}],
        },
        "coalesce_window": {
            "type": ["string", "number"],
            "description": "Events on one page this close together become one event.",
            "default": "5s",
            "examples": ["5s"],
        },
        "api_token": {
            **SECRET_REF_SCHEMA,
            "description": "The integration's Internal Integration Secret, used by the "
            "worker to fetch the pages events point at.",
            "examples": [{"env": "SWITCHBOARD_NOTION_TOKEN"}],
        },
        "api_url": {
            "type": "string",
            "description": "Notion API base URL (for a proxy or a test double).",
            "default": "https://api.notion.com",
            "examples": ["https://api.notion.com"],
        },
        "notion_version": {
            "type": "string",
            "pattern": "^\\d{4}-\\d{2}-\\d{2}$",
            "description": "Notion-Version header for API reads.",
            "default": "2025-09-03",
            "examples": ["2025-09-03"],
        },
        "workspaces": {
            "type": "object",
            "description": "Several Notion workspaces, by workspace id: each with its own "
            "integration token, verification token and databases. Events carry "
            "`notion/workspace/<id>` as their source, for `source:` in rules.",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "api_token": SECRET_REF_SCHEMA,
                    "verification_token": SECRET_REF_SCHEMA,
                    "api_url": {"type": "string"},
                    "databases": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["kind"],
                            "properties": {"kind": {"type": "string", "minLength": 1}},
                        },
                    },
                },
            },
            "examples": [
                {
                    "7b1e4f52-3c2a-4d8e-9f10-2a6c5e8d9b01": {
                        "api_token": {"env": "NOTION_TOKEN_ACME"},
                        "verification_token": {"env": "NOTION_VERIFY_ACME"},
                    }
                }
            ],
        },
        "duplicates": {
            "type": "object",
            "additionalProperties": False,
            "description": "Duplicate-task detection: a page created in one of `databases` "
            "is compared with that database's open tasks and its event carries "
            "`data.duplicates` (docs/rules.md).",
            "properties": {
                "threshold": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "default": 0.6,
                    "description": "Score from which a task is reported as a duplicate.",
                    "examples": [0.6],
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 20,
                    "default": 3,
                    "description": "Duplicates reported per new task, best first.",
                    "examples": [3],
                },
                "refresh": {
                    "type": ["string", "number"],
                    "default": "1h",
                    "description": "Read the whole database again when the stored index "
                    "is older than this (events keep it current in between).",
                    "examples": ["1h"],
                },
                "closed": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Status values of tasks that are no longer open.",
                    "examples": [["Done", "Cancelled"]],
                },
                "status_property": {"type": "string", "examples": ["Status"]},
                "description_property": {
                    "type": "string",
                    "description": "Text property compared besides the title "
                    "(default: Description, Notes or Summary, the first present).",
                    "examples": ["Notes"],
                },
                "assignee_property": {"type": "string", "examples": ["Assignee"]},
                "project_property": {"type": "string", "examples": ["Project"]},
                "max_tasks": {
                    "type": "integer",
                    "minimum": 100,
                    "maximum": 10000,
                    "default": 1000,
                    "description": "Tasks read per refresh at most (100 per request).",
                    "examples": [1000],
                },
            },
            "examples": [{"threshold": 0.6, "refresh": "1h", "closed": ["Done"]}],
        },
        "max_age": {
            "type": ["string", "number"],
            "description": "Refuse signed events whose timestamp is older than this "
            "(Notion retries for about 24 hours; unset = no limit).",
            "examples": ["48h"],
        },
    },
}
