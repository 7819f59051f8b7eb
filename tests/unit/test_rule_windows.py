"""throttle, dedupe and group: counted per key and window, idempotent under reprocessing."""

from __future__ import annotations

from pathlib import Path

from hub.clock import FakeClock
from hub.events import event_id_for
from hub.pipeline.process import ProcessOutcome, flush_group
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.store import NewInbound, Store, open_store, windows
from tests.support import fixture_path, make_settings, process_stored

OPENED = fixture_path("github", "issues", "opened.json").read_bytes()
LABELED = fixture_path("github", "issues", "labeled.json").read_bytes()


def _runtime(tmp_path: Path, rules: str) -> Runtime:
    return build_runtime(make_settings(tmp_path, rules=rules), load_plugins(), clock=FakeClock())


def _deliver_event(
    rt: Runtime, delivery: str, body: bytes = OPENED, event: str = "issues"
) -> ProcessOutcome:
    event_id = event_id_for("github", delivery)
    rt.store.insert_events(
        [
            NewInbound(
                id=event_id,
                source="github",
                provider_delivery_id=delivery,
                received_at=rt.clock.now().timestamp(),
                headers={"x-github-event": event},
                body=body,
            )
        ]
    )
    outcome = process_stored(rt, event_id)
    assert outcome is not None
    return outcome


def _advance(rt: Runtime, seconds: float) -> None:
    assert isinstance(rt.clock, FakeClock)
    rt.clock.advance(seconds)


THROTTLE = """
rules:
  - id: limited
    on: github.issues.*
    throttle: {key: "{{ event.data.fields.repository }}", per: 5m, limit: 2}
    actions:
      - log: {to: inbox, message: "{{ event.type }}"}
"""


def test_throttle_allows_limit_firings_per_key_per_window(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, THROTTLE)
    closing_runtimes.append(rt)
    outcomes = [_deliver_event(rt, f"t-{n}") for n in range(3)]
    assert [len(o.pending) for o in outcomes] == [1, 1, 0]
    assert outcomes[2].suppressed == ["limited"]
    _advance(rt, 5 * 60 + 1)
    assert len(_deliver_event(rt, "t-later").pending) == 1


def test_dedupe_drops_the_same_key_within_its_window(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(
        tmp_path,
        """
rules:
  - id: once-per-issue
    on: github.issues.*
    dedupe: {key: "{{ event.data.entity.id }}", window: 10m}
    actions:
      - log: {to: inbox, message: "{{ event.type }}"}
""",
    )
    closing_runtimes.append(rt)
    first = _deliver_event(rt, "d-1")
    second = _deliver_event(rt, "d-2", LABELED, "issues")  # same issue, other action
    assert len(first.pending) == 1
    assert second.pending == []
    assert second.suppressed == ["once-per-issue"]


def test_group_collects_events_and_flushes_one_digest(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(
        tmp_path,
        """
rules:
  - id: digest
    on: github.issues.*
    group: {key: "{{ event.data.fields.repository }}", window: 1h}
    actions:
      - log:
          to: inbox
          message: >-
            {{ group.count }} issue events in {{ group.key }}:
            {{ events | map(attribute='type') | join(', ') }}
""",
    )
    closing_runtimes.append(rt)
    first = _deliver_event(rt, "g-1")
    second = _deliver_event(rt, "g-2", LABELED)
    assert first.pending == second.pending == []
    [(group_id, flush_at)] = first.groups
    assert second.groups == []  # joined the open group; its flush is already scheduled
    assert flush_at == rt.clock.now().timestamp() + 3600
    flush = {
        "store": rt.store,
        "ruleset": rt.rules.current,
        "destinations": rt.settings.destinations,
        "clock": rt.clock,
        "lease_s": 30,
    }
    early = flush_group(group_id, **flush)  # not due yet: come back when it is
    assert early is not None
    assert early.pending == []
    assert early.retry_in_s is not None
    assert early.retry_in_s > 0
    _advance(rt, 3600)
    flushed = flush_group(group_id, **flush)
    assert flushed is not None
    [(delivery_id, connector)] = flushed.pending
    assert connector == "log"
    row = rt.store.get_delivery(delivery_id)
    assert row is not None
    assert row.params["message"] == (
        "2 issue events in Codertocat/Hello-World: github.issues.opened, github.issues.labeled"
    )
    assert flush_group(group_id, **flush) is None  # flushed once
    third = _deliver_event(rt, "g-3")
    assert len(third.groups) == 1
    assert third.groups[0][0] != group_id  # a new window


def test_a_window_counts_an_event_once_however_often_it_is_processed(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    # A worker that counted an event and died before finishing will process it again.
    rt = _runtime(tmp_path, THROTTLE)
    closing_runtimes.append(rt)
    args = {
        "store": rt.store,
        "rule_id": "limited",
        "kind": "throttle",
        "key": "k",
        "now": rt.clock.now().timestamp(),
        "per_s": 300.0,
        "limit": 2,
    }
    assert windows.admit(event_id="e1", **args)  # type: ignore[arg-type]
    assert windows.admit(event_id="e1", **args)  # type: ignore[arg-type]
    assert windows.admit(event_id="e2", **args)  # type: ignore[arg-type]
    assert not windows.admit(event_id="e3", **args)  # type: ignore[arg-type]


def test_a_sliding_window_follows_the_burst_but_never_past_its_cap(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    common = {"rule_id": "@source:notion", "key": "page:1", "window_s": 2.0, "max_events": 100}

    def add(n: int, now: float) -> float:
        slot = windows.add_to_group(
            store, event_id=f"e{n}", event={"n": n}, now=now, max_wait_s=5.0, **common
        )
        assert slot is not None
        return slot.flush_at

    assert add(0, now=100.0) == 102.0
    assert add(1, now=101.5) == 103.5  # each event moves the flush 2 s past it...
    assert add(2, now=103.0) == 105.0
    assert add(3, now=104.5) == 105.0  # ...but not past 5 s after the first
    assert windows.group_due_in(store, _only_group(store), now=104.5) == 0.5
    store.close()


def _only_group(store: Store) -> str:
    batch_ids = windows.due_groups(store, now=1e12)
    assert len(batch_ids) == 1
    return batch_ids[0]
