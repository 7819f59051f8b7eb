"""Rules' `query:` steps: read a source (Notion) or the store before the actions render.

A summary, a report or a chat command needs data the event does not carry: "tasks due
today", "done this week", "my open tasks". A rule names each read, and the results reach
its action templates as `query.<name>`:

    query:
      due:  {notion.query: {database: task, filter: {...}, sorts: [...]}}
      done: {store.query: {events: notion.page.properties_updated, since: 7d,
                           where: {changes.Status.to: Done}}}

Queries run in the worker when the rule matches, before its deliveries are planned. A
provider that is busy (429, 5xx) is waited for here, within a bound, rather than leaving
the event to be processed again: the event was already enriched, and enriching twice
would lose its `changes`. A step that cannot succeed (bad filter, no access) makes the
rule's deliveries dead with the reason, visible in the dead-letter queue.
`approval.query` stores an approval request or decides one from a click (hub/team/approvals.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from connectors.base import parse_duration
from hub.rules.conditions import Condition, compile_condition
from hub.rules.model import Rule, lookup_path
from hub.rules.templates import TemplateProblem
from hub.sources.base import EnrichContext, QueryFailed, QueryingSource, RetryLater, Source
from hub.store import Store
from hub.store.history import deliveries_in_period, events_in_period
from hub.store.queries import glob_prefix
from hub.team.approvals import APPROVAL_PROVIDER, ApprovalStepError, approval_step

__all__ = ["STORE_PROVIDER", "QueryRun", "query_store", "run_queries"]

log = logging.getLogger("switchboard.queries")

#: `store.query`: the hub's own history; every other provider is a source by name.
STORE_PROVIDER = "store"
#: A busy provider is asked this many times in all, waiting as it says in between...
MAX_ATTEMPTS = 4
#: ...but never longer than this in all: the worker thread is held meanwhile.
MAX_WAIT_S = 30.0
DEFAULT_STORE_LIMIT = 500
MAX_STORE_LIMIT = 5000

#: Runs a matched rule's queries for one event document: `{name: results}`.
#: Raises QueryFailed (the rule's deliveries die with the reason).
QueryRun = Callable[[Rule, Mapping[str, Any]], dict[str, Any]]


async def run_queries(
    rule: Rule,
    document: Mapping[str, Any],
    *,
    store: Store,
    sources: Mapping[str, Source],
    ctx: EnrichContext,
) -> dict[str, Any]:
    """Every query step of `rule`, in order; results by step name."""
    context = {"event": document, "rule": {"id": rule.id, "description": rule.description}}
    results: dict[str, Any] = {}
    for spec in rule.queries:
        try:
            params = spec.params.render(context)
        except TemplateProblem as exc:
            raise QueryFailed(f"query '{spec.name}': {exc.message}") from exc
        try:
            if spec.provider == STORE_PROVIDER:
                until = event_time(document, default=ctx.clock.now().timestamp())
                results[spec.name] = await asyncio.to_thread(query_store, store, params, until)
            elif spec.provider == APPROVAL_PROVIDER:
                results[spec.name] = await asyncio.to_thread(
                    _approval, store, rule, document, params, ctx.clock.now().timestamp()
                )
            else:
                source = sources.get(spec.provider)
                if not isinstance(source, QueryingSource):
                    raise QueryFailed(
                        f"source '{spec.provider}' is not enabled or cannot be queried"
                    )
                results[spec.name] = await _patiently(source, params, ctx)
        except QueryFailed as exc:
            raise QueryFailed(f"query '{spec.name}': {exc}") from exc
    return results


def _approval(
    store: Store, rule: Rule, document: Mapping[str, Any], params: Mapping[str, Any], now: float
) -> list[dict[str, Any]]:
    """`approval.query`: store a request or decide one from a click (hub/team/approvals.py);
    one result, as a list like every step's (`query.<name>[0]`)."""
    try:
        return [
            approval_step(
                store, rule.people, rule_id=rule.id, document=document, params=params, now=now
            )
        ]
    except ApprovalStepError as exc:
        raise QueryFailed(f"approval.query: {exc}") from exc


async def _patiently(
    source: QueryingSource, params: Mapping[str, Any], ctx: EnrichContext
) -> list[dict[str, Any]]:
    waited = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await source.query(params, ctx)
        except RetryLater as exc:
            wait = exc.after_s if exc.after_s is not None else float(2**attempt)
            if attempt == MAX_ATTEMPTS or waited + wait > MAX_WAIT_S:
                raise QueryFailed(f"{exc} (gave up after {attempt} attempts)") from exc
            log.warning("query to %s must wait %.1fs: %s", source.name, wait, exc)
            await ctx.clock.sleep(wait)
            waited += wait
    raise AssertionError("unreachable")  # pragma: no cover


def query_store(store: Store, params: Mapping[str, Any], until: float) -> list[dict[str, Any]]:
    """A `store.query` step over [until - since, until): events or deliveries.

    `until` is the triggering event's time (a schedule tick), so a replayed report covers
    the same period as the first run.
    """
    try:
        since = until - parse_duration(params.get("since", "1d")).total_seconds()
        limit = int(params.get("limit", DEFAULT_STORE_LIMIT))
    except (TypeError, ValueError) as exc:
        raise QueryFailed(f"store.query: {exc}") from exc
    if not 1 <= limit <= MAX_STORE_LIMIT:
        raise QueryFailed(f"store.query: `limit` must be between 1 and {MAX_STORE_LIMIT}")
    if "deliveries" in params:
        wanted = params["deliveries"]
        statuses = tuple(wanted) if isinstance(wanted, list) else (str(wanted),)
        if statuses == ("*",):
            statuses = ()
        return deliveries_in_period(store, since=since, until=until, statuses=statuses, limit=limit)
    type_glob = str(params.get("events") or "*")
    try:
        conditions = [
            compile_condition(str(path), spec)
            for path, spec in dict(params.get("where") or {}).items()
        ]
    except (TypeError, ValueError) as exc:
        raise QueryFailed(f"store.query: where: {exc}") from exc
    found: list[dict[str, Any]] = []
    for document in events_in_period(
        store,
        since=since,
        until=until,
        source=params.get("source") or None,
        type_prefix=glob_prefix(type_glob),
    ):
        if not fnmatchcase(str(document.get("type", "")), type_glob):
            continue
        if _holds(conditions, document):
            found.append(document)
            if len(found) >= limit:
                break
    return found


def _holds(conditions: list[Condition], document: Mapping[str, Any]) -> bool:
    def lookup(path: str) -> tuple[bool, Any]:
        return lookup_path(document, path)

    return all(c.holds(lookup) for c in conditions)


def event_time(document: Mapping[str, Any], *, default: float) -> float:
    """The event's own `time` as epoch seconds (the tick of a schedule event)."""
    try:
        return datetime.fromisoformat(str(document.get("time"))).timestamp()
    except ValueError:
        return default
