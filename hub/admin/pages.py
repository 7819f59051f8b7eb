"""The dashboard's pages: overview, events, deliveries (DLQ + replay), rules, sources.

Pages show the same dicts the JSON API returns (`hub.api.views`), masked the same way,
so the dashboard can never show more than the API does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from connectors.base import parse_duration
from hub.admin.charts import throughput_chart
from hub.admin.flash import SessionCookie
from hub.admin.forms import checked_form
from hub.api import views
from hub.api.audit import RESULTS, audit_filter, entry_view, export_jsonl
from hub.api.deliveries import DELIVERY_STATUSES, delivery_filter, load_delivery
from hub.api.events import EVENT_STATUSES, event_filter, load_event_detail, without_raw
from hub.api.http import list_page
from hub.api.operations import InvalidInput, reload_rules, replay_now, simulate
from hub.api.stats import load_stats
from hub.auth.audit import ACTIONS, audit
from hub.logging import Masker, Revealed
from hub.runtime import Runtime
from hub.store import stats
from hub.store.audit import list_audit
from hub.store.notices import decide_notice, list_notices
from hub.store.queries import InboundFilter, get_delivery_view, list_deliveries, list_events
from hub.store.stats import MinuteBucket

#: Replayed deliveries shown in place after a replay; a bulk replay shows its first ones.
MAX_SHOWN_REPLAYS = 50


class Dashboard:
    """Page handlers; each reads the runtime from lifespan state."""

    def __init__(self, templates: Jinja2Templates, cookie: SessionCookie) -> None:
        self.templates = templates
        self.cookie = cookie

    def render(self, request: Request, name: str, **context: Any) -> Response:
        runtime: Runtime = request.state.runtime
        masker = Masker(runtime.settings.secret_values())
        session = request.auth
        base = {
            "user": request.user,
            "csrf": session.csrf if session else "",
            "root": request.scope.get("root_path", ""),
            # Only the hub's own flash messages: never text taken from the URL.
            "notices": session.flash if session else (),
        }
        response = self.templates.TemplateResponse(
            request, name, {**base, **{k: masker(v) for k, v in context.items()}}
        )
        self.cookie.clear(request, response)
        return response

    def redirect_back(self, request: Request, back_to: str, default: str) -> RedirectResponse:
        """303 to a dashboard path from a form's `back` field (never off the dashboard)."""
        if not back_to.startswith("/") or back_to.startswith("//"):
            back_to = default
        return RedirectResponse(f"{request.scope.get('root_path', '')}{back_to}", status_code=303)

    async def overview(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        data = await asyncio.to_thread(load_stats, runtime, 60)
        recent = await asyncio.to_thread(list_events, runtime.store, InboundFilter(limit=8))
        buckets = [
            MinuteBucket(0.0, b["received"], b["delivered"], b["failed"], b["retried"])
            for b in data["throughput"]
        ]
        labels = [str(b["start"])[11:16] for b in data["throughput"]]
        return self.render(
            request,
            "overview.html",
            stats=data,
            chart=throughput_chart(buckets, labels),
            chart_labels=labels,
            recent=[views.event_summary(e) for e in recent.items],
            rules={
                "count": len(runtime.rules.current.rules),
                "files": len(runtime.rules.current.files),
                "last_error": runtime.rules.last_error,
            },
        )

    async def events(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        _, page = await list_page(request, event_filter, list_events, _bad_request)
        return self.render(
            request,
            "events.html",
            items=[views.event_summary(e) for e in page.items],
            next_url=_next_url(request, page.next_cursor),
            filters=dict(request.query_params),
            sources=sorted(runtime.sources),
            statuses=EVENT_STATUSES,
        )

    async def event(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        detail = await asyncio.to_thread(
            load_event_detail, runtime, request.path_params["event_id"]
        )
        if detail is None:
            raise HTTPException(404, "no such event")
        if not request.user.sees_payloads:
            detail = without_raw(detail)
        return self.render(request, "event.html", event=detail)

    async def deliveries(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        f, page = await list_page(request, delivery_filter, list_deliveries, _bad_request)
        items = [views.delivery(d) for d in page.items]
        # Just replayed from this page: each stays in place (even when it no longer fits
        # the filter) and shows its progress until it has a result.
        replayed = request.query_params.getlist("replayed")[:MAX_SHOWN_REPLAYS]
        listed = {d["id"]: d for d in items}
        progress = []
        for delivery_id in dict.fromkeys(replayed):
            found = listed.get(delivery_id)
            if found is None:
                view = await asyncio.to_thread(get_delivery_view, runtime.store, delivery_id)
                found = views.delivery(view) if view is not None else None
            if found is not None:
                progress.append({**found, "replayed": True})
        shown = {d["id"] for d in progress}
        return self.render(
            request,
            "deliveries.html",
            items=progress + [d for d in items if d["id"] not in shown],
            refresh_s=2 if any(d["status"] in ("pending", "sending") for d in progress) else None,
            next_url=_next_url(request, page.next_cursor),
            filters=dict(request.query_params),
            statuses=DELIVERY_STATUSES,
            current=f.status or "",
        )

    async def delivery(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        found = await asyncio.to_thread(load_delivery, runtime, request.path_params["delivery_id"])
        if found is None:
            raise HTTPException(404, "no such delivery")
        return self.render(request, "delivery.html", delivery=found)

    async def replay(self, request: Request) -> Response:
        """One delivery (`id`), the checked ones (`ids`), or every dead one (`dead_since`)."""
        runtime: Runtime = request.state.runtime
        form = await checked_form(request)
        ids = [i for i in form.getlist("ids") + form.getlist("id") if i]
        since: float | None = None
        if form.get("dead_since"):
            try:
                back = parse_duration(form.get("dead_since")).total_seconds()
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from exc
            since = runtime.clock.now().timestamp() - back
        replayed: list[str] = []
        if not ids and since is None:
            notice = "Nothing selected to replay."
        else:
            result = await asyncio.to_thread(
                replay_now, runtime, ids, dead_since_s=since, force=form.get("force") == "1"
            )
            notice = f"Replaying {_count(len(result.deliveries), 'delivery', 'deliveries')}."
            if result.skipped:
                left = _count(len(result.skipped), "delivered one", "delivered ones")
                notice += f" Left {left} alone."
            replayed = result.deliveries
            target = ", ".join(ids) if ids else f"dead since {form.get('dead_since')}"
            await audit(
                request,
                "replay",
                target=target,
                detail={
                    "via": "dashboard",
                    "force": form.get("force") == "1",
                    "replayed": result.deliveries,
                    "skipped_delivered": result.skipped,
                },
            )
        back_to = form.get("back") or "/deliveries?status=dead"
        if replayed and back_to.startswith("/deliveries"):
            back_to = _with_query(back_to, [("replayed", i) for i in replayed[:MAX_SHOWN_REPLAYS]])
        response = self.redirect_back(request, back_to, "/deliveries?status=dead")
        self.cookie.flash(request, response, notice)
        return response

    async def rules(self, request: Request) -> Response:
        return await self._rules_page(request, simulation=None, form=None, error=None)

    async def simulate(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        form = await checked_form(request)
        text = form.get("payload")
        headers = dict(
            (name.strip(), value.strip())
            for name, _, value in (
                line.partition(":") for line in form.get("headers").splitlines() if ":" in line
            )
        )
        results: list[dict[str, Any]] | None = None
        error: str | None = None
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = text
        try:
            results = simulate(
                runtime, source=form.get("source") or None, payload=payload, headers=headers
            )
        except InvalidInput as exc:
            error = exc.message
        await audit(
            request,
            "simulate",
            target=form.get("source") or "event",
            result="failed" if error else "ok",
            detail={"via": "dashboard"},
        )
        return await self._rules_page(request, simulation=results, form=form.fields, error=error)

    async def reload(self, request: Request) -> Response:
        """Reload the rule files now and say how it went."""
        runtime: Runtime = request.state.runtime
        await checked_form(request)
        result = await asyncio.to_thread(reload_rules, runtime)
        await audit(
            request,
            "rules.reload",
            result="failed" if result.error else "ok",
            detail={"via": "dashboard", "rules": result.rules, "files": result.files},
        )
        if result.error is None:
            rules = _count(result.rules, "rule", "rules")
            message = f"Reloaded {rules} from {_count(result.files, 'file', 'files')}."
        else:
            message = "The reload was rejected; the previous rules keep running."
        response = self.redirect_back(request, "/rules", "/rules")
        self.cookie.flash(request, response, message)
        return response

    async def _rules_page(
        self,
        request: Request,
        *,
        simulation: list[dict[str, Any]] | None,
        form: dict[str, list[str]] | None,
        error: str | None,
    ) -> Response:
        runtime: Runtime = request.state.runtime
        counts = await asyncio.to_thread(stats.rule_counts, runtime.store)
        values = {k: v[0] for k, v in (form or {}).items() if v and k != "csrf"}
        return self.render(
            request,
            "rules.html",
            status=views.rules_status(runtime.rules, counts),
            sources=sorted(runtime.plugins.sources),
            simulation=simulation,
            simulate_error=error,
            form=values,
            warnings=runtime.rules.current.warnings,
        )

    async def audit(self, request: Request) -> Response:
        """The audit trail, newest first, with the API's filters."""
        runtime: Runtime = request.state.runtime
        f = audit_filter(request, runtime.clock.now().timestamp())
        items = await asyncio.to_thread(list_audit, runtime.store, f)
        full = f.limit is not None and len(items) == f.limit
        query = urlencode({k: v for k, v in request.query_params.items() if k != "cursor"})
        return self.render(
            request,
            "audit.html",
            items=[entry_view(e) for e in items],
            next_url=_next_url(request, str(items[-1].id)) if full and items else None,
            export_url=f"{request.scope.get('root_path', '')}/audit.jsonl?{query}",
            filters=dict(request.query_params),
            actions=ACTIONS,
            results=RESULTS,
        )

    async def audit_export(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        f = audit_filter(request, runtime.clock.now().timestamp())
        return export_jsonl(runtime, f)

    async def sources(self, request: Request) -> Response:
        runtime: Runtime = request.state.runtime
        last = await asyncio.to_thread(stats.last_event_per_source, runtime.store)
        base = runtime.settings.server.public_url or str(request.base_url).rstrip("/")
        rows = []
        for name, settings in sorted(runtime.settings.sources.items()):
            seen = last.get(name)
            rows.append(
                {
                    "name": name,
                    "url": f"{base.rstrip('/')}/hooks/{name}",
                    "has_secret": settings.secret is not None,
                    "last_event": seen[0] if seen else None,
                    "last_at": views.iso(seen[1]) if seen else None,
                    "last_status": seen[2] if seen else None,
                    # What the admin must copy (Notion's verification token): configured
                    # secrets stay masked, token shapes do not (the page is admin-only).
                    "notices": [
                        {**n, "notice": Revealed(n["notice"])}
                        for n in await asyncio.to_thread(list_notices, runtime.store, name)
                    ],
                }
            )
        return self.render(
            request, "sources.html", sources=rows, public_url=runtime.settings.server.public_url
        )

    async def decide_notice(self, request: Request) -> Response:
        """Confirm one pending token of a source (the others are dropped) or reject one."""
        runtime: Runtime = request.state.runtime
        form = await checked_form(request)
        source, ident, decision = form.get("source"), form.get("id"), form.get("decision")
        if decision not in ("confirm", "reject"):
            raise HTTPException(400, "decision must be confirm or reject")
        now = runtime.clock.now().timestamp()
        found = await asyncio.to_thread(
            decide_notice, runtime.store, source, ident, confirm=decision == "confirm", at=now
        )
        await audit(
            request,
            "notice.decide",
            target=source,
            result="ok" if found else "failed",
            detail={"decision": decision, "notice": ident},
        )
        if not found:
            message = "That token is no longer pending; nothing changed."
        elif decision == "confirm":
            message = (
                f"Kept that token for {source} and dropped the others. It is proven only when "
                "Notion's own Verify step accepts it."
            )
        else:
            message = f"Rejected that token for {source}."
        response = self.redirect_back(request, "/sources", "/sources")
        self.cookie.flash(request, response, message)
        return response


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _with_query(path: str, extra: list[tuple[str, str]]) -> str:
    base, _, query = path.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "replayed"]
    return f"{base}?{urlencode(kept + extra)}"


def _bad_request(message: str) -> HTTPException:
    """A listing's 400 as a page answers it (the API answers with JSON)."""
    return HTTPException(400, message)


def _next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k not in ("cursor", "replayed")}
    return f"{request.url.path}?{urlencode({**params, 'cursor': cursor})}"
