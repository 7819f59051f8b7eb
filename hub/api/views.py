"""JSON shapes of events, deliveries and rules, shared by the API and the dashboard.

Every string that leaves the hub goes through `Masker`, so a secret that ended up in a
payload, header or error text is shown masked, never as is.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from hub.logging import NESTED_TOO_DEEP
from hub.rules.model import Rule, RuleSetRef
from hub.secrets import MASK
from hub.store import AttemptRecord, InboundRow
from hub.store.queries import DeliveryView, InboundSummary
from hub.store.stats import RuleCounts


def iso(ts: float | None) -> str | None:
    """Epoch seconds → RFC 3339 UTC (`2026-11-21T10:00:00.123Z`)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: The provider's id of an inbound request was `delivery_id` in the API before it had a
#: name of its own (a delivery's `id` is ours); the old key is still sent, with the same
#: value, for clients written against it. Deprecated in the OpenAPI document.
DEPRECATED_DELIVERY_ID = "delivery_id"


def event_summary(e: InboundSummary) -> dict[str, Any]:
    return {
        "id": e.id,
        "source": e.source,
        "provider_delivery_id": e.provider_delivery_id,
        DEPRECATED_DELIVERY_ID: e.provider_delivery_id,
        "status": e.status,
        "received_at": iso(e.received_at),
        "processed_at": iso(e.processed_at),
        "types": e.types,
        "titles": e.titles,
        "error": e.error,
    }


#: Payload fields that are credentials, whatever the source: Discord's interaction token,
#: Slack's response_url(s) and legacy verification token. A source keeps them in the stored
#: body (it is the signed original) and marks them secret in `fields.followup`.
SECRET_PAYLOAD_KEYS = frozenset({"token", "response_url"})


def payload_of(row: InboundRow) -> Any:
    """The raw body as JSON when it parses, else as text; None once pruned. Credential
    fields are masked in both, and in a form body's JSON `payload` field (Slack)."""
    if not row.body:
        return None
    text = row.body.decode("utf-8", errors="replace")
    try:
        return _without_secrets(json.loads(text))
    except ValueError:
        pass
    except RecursionError:  # legal JSON nested too deep to walk; its text may hold a token
        return NESTED_TOO_DEEP
    if row.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _form_without_secrets(text)
    return text


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if k in SECRET_PAYLOAD_KEYS and isinstance(v, str) else _without_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _form_without_secrets(text: str) -> str:
    pairs = []
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        if key in SECRET_PAYLOAD_KEYS:
            value = MASK
        elif key == "payload":
            with contextlib.suppress(ValueError):
                value = json.dumps(_without_secrets(json.loads(value)))
        pairs.append(f"{urllib.parse.quote_plus(key)}={urllib.parse.quote_plus(value, safe='*')}")
    return "&".join(pairs)


def event_detail(
    row: InboundRow,
    *,
    matched: list[str],
    deliveries: list[tuple[DeliveryView, list[AttemptRecord]]],
    processed_at: float | None = None,
) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "provider_delivery_id": row.provider_delivery_id,
        DEPRECATED_DELIVERY_ID: row.provider_delivery_id,
        "status": row.status,
        "received_at": iso(row.received_at),
        "processed_at": iso(processed_at),
        "processing_attempts": row.attempts,
        "error": row.error,
        "headers": dict(row.headers),
        "payload": payload_of(row),
        "payload_pruned": not row.body,
        "normalized": row.normalized or [],
        "matched_rules": matched,
        "deliveries": [delivery(d, history) for d, history in deliveries],
    }


def delivery(d: DeliveryView, history: list[AttemptRecord] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": d.id,
        "event": d.inbound_id,
        "event_id": d.event_id,
        "rule": d.rule_id,
        "action_index": d.action_index,
        "connector": d.connector,
        "operation": d.operation,
        "destination": d.destination,  # a name from switchboard.yaml; its options stay there
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at) if d.status == "pending" else None,
        "last_error": d.last_error,
        "ref": d.ref,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "params": d.params,
    }
    if history is not None:
        out["attempt_history"] = [attempt(a) for a in history]
    return out


def attempt(a: AttemptRecord) -> dict[str, Any]:
    return {
        "number": a.number,
        "started_at": iso(a.started_at),
        "duration_ms": round(a.duration_ms, 3),
        "outcome": a.outcome,
        "status_code": a.status_code,
        "detail": a.detail,
    }


def rules_status(ref: RuleSetRef, counts: dict[str, RuleCounts]) -> dict[str, Any]:
    ruleset = ref.current
    return {
        "files": list(ruleset.files),
        "loaded_at": iso(ref.loaded_at),
        "last_error": ref.last_error,
        "count": len(ruleset.rules),
        "rules": [rule(r, counts.get(r.id)) for r in ruleset.rules],
    }


def rule(r: Rule, counts: RuleCounts | None) -> dict[str, Any]:
    c = counts or RuleCounts(0, 0, 0, 0, None)
    return {
        "id": r.id,
        "description": r.description,
        "on": list(r.on),
        "sources": list(r.sources),
        "location": str(r.location),
        "actions": [
            {"connector": a.connector, "operation": a.operation, "destination": a.destination}
            for a in r.actions
        ],
        "matched_events": c.matched_events,
        "deliveries": c.deliveries,
        "delivered": c.delivered,
        "dead": c.dead,
        "last_matched_at": iso(c.last_matched_at),
    }
