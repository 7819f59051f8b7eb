"""GET /api/v1/openapi.json: the API described as OpenAPI 3.1, written by hand.

Hand-written because the handlers are plain Starlette functions; the test suite checks
that every route is described and that the document says the same as the code.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.api.deliveries import DELIVERY_STATUSES
from hub.api.events import EVENT_STATUSES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_ERRORS = {
    "400": _json(_ref("Error"), "Malformed request"),
    "401": _json(_ref("Error"), "Missing or unknown token"),
}
_WRITE_ERRORS = {**_ERRORS, "403": _json(_ref("Error"), "The token's role is below operator")}
_PAGE = [
    _query("limit", "Items per page (1-200, default 50).", {"type": "integer"}),
    _query("cursor", "next_cursor of the previous page."),
    _query("since", "A duration back from now (1h) or an RFC 3339 time."),
]
_TIME = {"type": ["string", "null"], "format": "date-time"}
_REPLAYED = {
    "type": "object",
    "properties": {
        "replayed": {"type": "array", "items": {"type": "string"}},
        "events": {"type": "array", "items": {"type": "string"}},
        "skipped_delivered": {"type": "array", "items": {"type": "string"}},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    },
    "EventSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "source": {"type": "string"},
            "provider_delivery_id": {
                "type": "string",
                "description": "The provider's id of the request (X-GitHub-Delivery, "
                "Notion's event id, ...); the hub de-duplicates on it. Not a delivery's id.",
            },
            "delivery_id": {
                "type": "string",
                "deprecated": True,
                "description": "The same value as provider_delivery_id, under its old name; "
                "still sent for older clients.",
            },
            "status": {"enum": list(EVENT_STATUSES)},
            "received_at": _TIME,
            "processed_at": _TIME,
            "types": {"type": "array", "items": {"type": "string"}},
            "titles": {"type": "array", "items": {"type": "string"}},
            "error": {"type": ["string", "null"]},
        },
    },
    "Event": {
        "allOf": [_ref("EventSummary")],
        "properties": {
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "payload": {
                "description": "The raw body (JSON when it parses); null once pruned, and "
                "null with headers for roles below operator (payload_hidden)."
            },
            "payload_pruned": {"type": "boolean"},
            "payload_hidden": {"type": "boolean"},
            "normalized": {"type": "array", "items": {"type": "object"}},
            "matched_rules": {"type": "array", "items": {"type": "string"}},
            "deliveries": {"type": "array", "items": _ref("Delivery")},
        },
    },
    "Attempt": {
        "type": "object",
        "properties": {
            "number": {"type": "integer"},
            "started_at": _TIME,
            "duration_ms": {"type": "number"},
            "outcome": {"enum": ["ok", "retry", "fail", "error"]},
            "status_code": {"type": ["integer", "null"]},
            "detail": {"type": ["string", "null"]},
        },
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string", "description": "The inbound event id."},
            "event_id": {"type": "string", "description": "The normalized event id."},
            "rule": {"type": "string"},
            "action_index": {"type": "integer"},
            "connector": {"type": "string"},
            "operation": {"type": ["string", "null"]},
            "destination": {"type": ["string", "null"], "description": "Name only."},
            "status": {"enum": list(DELIVERY_STATUSES)},
            "attempts": {"type": "integer"},
            "next_attempt_at": _TIME,
            "last_error": {"type": ["string", "null"]},
            "ref": {"type": ["string", "null"]},
            "created_at": _TIME,
            "updated_at": _TIME,
            "params": {"type": "object"},
            "attempt_history": {"type": "array", "items": _ref("Attempt")},
        },
    },
}


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


PATHS: dict[str, Any] = {
    "/events": {
        "get": {
            "summary": "List inbound events, newest first",
            "parameters": [
                _query("source", "Source name, e.g. github."),
                _query("type", "Event type; globs allowed (github.issues.*)."),
                _query("status", "Processing status.", {"enum": list(EVENT_STATUSES)}),
                _query("q", "Text search in ids, errors, normalized events and raw bodies."),
                *_PAGE,
            ],
            "responses": {"200": _json(_page_of("EventSummary")), **_ERRORS},
        }
    },
    "/events/{event_id}": {
        "get": {
            "summary": "One event: raw payload, normalized events, matched rules, deliveries",
            "parameters": [_path("event_id")],
            "responses": {"200": _json(_ref("Event")), "404": _json(_ref("Error")), **_ERRORS},
        }
    },
    "/deliveries": {
        "get": {
            "summary": "List deliveries; status=dead is the dead-letter queue",
            "parameters": [
                _query("status", "Delivery status.", {"enum": list(DELIVERY_STATUSES)}),
                _query("connector", "Connector name."),
                _query("destination", "Destination name."),
                _query("rule", "Rule id."),
                _query("event", "Inbound event id."),
                *_PAGE,
            ],
            "responses": {"200": _json(_page_of("Delivery")), **_ERRORS},
        }
    },
    "/deliveries/{delivery_id}": {
        "get": {
            "summary": "One delivery with every attempt",
            "parameters": [_path("delivery_id")],
            "responses": {"200": _json(_ref("Delivery")), "404": _json(_ref("Error")), **_ERRORS},
        }
    },
    "/deliveries/{delivery_id}/replay": {
        "post": {
            "summary": "Send one delivery again (dead, skipped or pending; delivered needs force)",
            "parameters": [_path("delivery_id")],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": {"force": {"type": "boolean"}}}
                    }
                },
            },
            "responses": {
                "202": _json(_REPLAYED, "Queued"),
                "404": _json(_ref("Error")),
                "409": _json(_ref("Error"), "Already delivered; pass force"),
                **_WRITE_ERRORS,
            },
        }
    },
    "/replay": {
        "post": {
            "summary": "Send many deliveries again: by id (delivery or event) and/or dead since",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "ids": {"type": "array", "items": {"type": "string"}},
                                "dead_since": {"type": "string", "examples": ["24h"]},
                                "force": {"type": "boolean"},
                            },
                        }
                    }
                },
            },
            "responses": {"202": _json(_REPLAYED, "Queued"), **_WRITE_ERRORS},
        }
    },
    "/rules": {
        "get": {
            "summary": "Loaded rule files, last reload and its error, per-rule match counts",
            "responses": {"200": _json({"type": "object"}), **_ERRORS},
        }
    },
    "/rules/reload": {
        "post": {
            "summary": "Reload the rule files now; a broken set is rejected (422), the last good "
            "one keeps running",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"rules": {"type": "integer"}, "files": {"type": "integer"}},
                    }
                ),
                "422": _json(_ref("Error"), "The new rule set was rejected"),
                **_WRITE_ERRORS,
            },
        }
    },
    "/simulate": {
        "post": {
            "summary": "Dry run a payload against the live rules; nothing is stored or sent",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["payload"],
                            "properties": {
                                "source": {"type": "string", "examples": ["github"]},
                                "headers": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "payload": {
                                    "description": "Raw webhook body, or a normalized event."
                                },
                            },
                        }
                    }
                },
            },
            "responses": {"200": _json({"type": "object"}), **_WRITE_ERRORS},
        }
    },
    "/stats": {
        "get": {
            "summary": "Per-minute throughput, p50/p99 end-to-end latency, queue depths",
            "parameters": [_query("minutes", "Window (1-1440, default 60).", {"type": "integer"})],
            "responses": {"200": _json({"type": "object"}), **_ERRORS},
        }
    },
    "/audit": {
        "get": {
            "summary": "The audit trail (role admin), newest first: logins, logouts, replays, "
            "simulations, rule reloads, source token decisions, role changes",
            "parameters": [
                _query("actor", "Token or user name."),
                _query("action", "login, logout, replay, simulate, rules.reload, ..."),
                _query("result", "ok, failed or denied."),
                _query("format", "jsonl: every matching entry as JSON lines (export)."),
                *_PAGE,
            ],
            "responses": {"200": _json({"type": "object"}), **_WRITE_ERRORS},
        }
    },
}


def openapi_document(server_url: str = "/api/v1") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard admin API",
            "version": "1",
            "description": "Events, deliveries, the dead-letter queue, rules and stats. "
            "Every call needs `Authorization: Bearer <token>`; POSTs need role admin.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_endpoint(request: Request) -> Response:
    return JSONResponse(openapi_document())
