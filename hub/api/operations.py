"""What an operator can do: replay deliveries, simulate a payload, reload the rules.

Both the API and the dashboard call these, so a button and a curl do the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.errors import ConfigError, RequestRejected
from hub.rules.testing import dry_run, normalize_payload
from hub.runtime import Runtime, load_rules
from hub.store.replay import Replayed, dead_since, replay


class InvalidInput(RequestRejected):
    """The request asked for something impossible; the message says what to send."""

    status = 400
    code = "invalid_input"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    deliveries: list[str]
    events: list[str]
    skipped: list[str]


def replay_now(
    runtime: Runtime,
    ids: list[str],
    *,
    dead_since_s: float | None = None,
    force: bool = False,
) -> ReplayResult:
    """Make deliveries (or events' deliveries) pending again and enqueue them at once.

    Unlike `switchboard replay` in embedded mode, this process owns the broker, so the
    rows are due now and their ids go straight onto the queue (the sweeper is a backup).
    """
    now = runtime.clock.now().timestamp()
    wanted = list(ids)
    if dead_since_s is not None:
        wanted += dead_since(runtime.store, since=dead_since_s)
    result: Replayed = replay(runtime.store, wanted, now=now, due_at=now, force=force)
    runtime.queue.enqueue_events(result.event_ids)
    runtime.queue.enqueue_deliveries(result.delivery_ids)
    return ReplayResult(
        [d for d, _ in result.delivery_ids], list(result.event_ids), list(result.skipped)
    )


def simulate(
    runtime: Runtime,
    *,
    source: str | None,
    payload: Any,
    headers: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Dry run: normalize a raw payload (or take a normalized event) and match the live
    rules; nothing is stored or sent. One entry per event with every rule's verdict."""
    if source:
        source_impl = runtime.sources.get(source)
        if source_impl is None:
            cls = runtime.plugins.sources.get(source)
            if cls is None:
                known = ", ".join(sorted(runtime.plugins.sources)) or "none"
                raise InvalidInput(f"unknown source '{source}'; installed: {known}")
            source_impl = cls()
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        try:
            events = normalize_payload(source_impl, body, headers, runtime.clock)
        except Exception as exc:  # a normalizer's error is the answer to a dry run, not a 500
            raise InvalidInput(
                f"the {source} source could not read this payload: {type(exc).__name__}: {exc}"
            ) from exc
    else:
        if not isinstance(payload, dict) or "type" not in payload:
            raise InvalidInput(
                "without a source, payload must be a normalized event (an object with 'type')"
            )
        events = [payload]
    ruleset = runtime.rules.current
    out = []
    for event in events:
        shown = {**event, "data": {**(event.get("data") or {}), "raw": None}}
        verdicts = [
            {"rule": v.rule_id, "matched": v.matched, "reason": v.reason, "actions": v.actions}
            for v in dry_run(ruleset, event)
        ]
        out.append({"event": shown, "rules": verdicts})
    return out


@dataclass(frozen=True, slots=True)
class Reloaded:
    """A reload's outcome: the new counts, or the error that kept the previous set."""

    rules: int
    files: int
    error: str | None


def reload_rules(runtime: Runtime) -> Reloaded:
    """Load the rule files again now; a broken set is rejected and the last good one stays
    (in this process: other hub processes reload on their own file watch or SIGHUP)."""
    try:
        ruleset = load_rules(runtime.settings, runtime.plugins, runtime.templates).ruleset
    except ConfigError as exc:
        runtime.rules.last_error = str(exc)
        current = runtime.rules.current
        return Reloaded(len(current.rules), len(current.files), str(exc))
    runtime.rules.swap(ruleset, at=runtime.clock.now().timestamp())
    return Reloaded(len(ruleset.rules), len(ruleset.files), None)
