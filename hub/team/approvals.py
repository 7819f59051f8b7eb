"""Approvals: a request with Approve / Reject buttons that one allowed person decides.

The request's buttons carry `approval:<id>:approve|reject` as their Discord custom_id or
Slack action_id; the click comes back signed by the provider as a `command.interaction`
event. `decide_click` checks the clicker against the request's deciders (people keys,
resolved from `to: {person|role}` when the request was made), then decides it once in
the store (hub/store/approvals.py): a second click, a replayed interaction or a click by
anyone else changes nothing and gets an answer saying why. `decision_actions` are what a
decision runs: the Notion write-back, the edit of every request message (buttons
disabled) and a note to the requester.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from connectors.base import RenderedAction, parse_duration
from hub.config.people import Directory, Person
from hub.store import approvals as stored
from hub.store.store import Store

__all__ = [
    "APPROVAL_PROVIDER",
    "ApprovalStepError",
    "Outcome",
    "approval_id",
    "approval_step",
    "button_id",
    "decide_click",
    "deciders_for",
    "decision_actions",
    "parse_button",
]

#: `approval.query` in a rule's `query:` (hub/pipeline/queries.py): `request:` or `decide:`.
APPROVAL_PROVIDER = "approval"
CHOICES: dict[str, stored.Status] = {"approve": "approved", "reject": "rejected"}
_BUTTON = re.compile(r"^approval:([0-9a-f]{32}):(approve|reject)$")


def approval_id(event_id: str, rule_id: str, action_index: int) -> str:
    """Stable per request, so re-rendering the same event never makes a second one."""
    material = f"{event_id}\x1f{rule_id}\x1f{action_index}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def button_id(request_id: str, choice: str) -> str:
    """The custom_id / action_id of a request's button (47 characters, under both limits)."""
    return f"approval:{request_id}:{choice}"


def parse_button(value: Any) -> tuple[str, str] | None:
    """(request id, approve|reject) of an approval button's id, else None."""
    match = _BUTTON.match(str(value or ""))
    return (match.group(1), match.group(2)) if match else None


def deciders_for(people: Directory, to: Mapping[str, Any]) -> list[str]:
    """People keys who may decide: `{person: ref}` (one or a list) or `{role: name}`."""
    if "role" in to:
        return [p.key for p in people.in_role(str(to["role"]))]
    refs = to.get("person")
    found = [people.find(r) for r in (refs if isinstance(refs, list) else [refs])]
    return [p.key for p in found if p is not None]


Kind = Literal["decided", "already", "not_allowed", "unknown", "expired"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    #: What to tell the person who clicked (ephemeral).
    message: str
    approval: stored.Approval | None = None
    person: Person | None = None


def decide_click(
    store: Store,
    people: Directory,
    *,
    request_id: str,
    choice: str,
    user_id: str,
    now: float,
    event_id: str = "",
) -> Outcome:
    """Decide a request from a button click by `user_id` (a Discord or Slack user id).

    The click's event decides once: processed again (its worker died after the decision,
    before the decision's deliveries were stored) it finds itself as the decider and
    decides again, so the write-back and the edits are planned; they keep their
    idempotency keys. Any other click, a double click included, finds it decided.
    """
    approval = stored.get_approval(store, request_id)
    if approval is None:
        return Outcome("unknown", "This approval request is not known here any more.")
    person = people.find(user_id)
    if person is None or person.key not in approval.deciders:
        names = ", ".join(_name(people, k) for k in approval.deciders) or "nobody"
        return Outcome(
            "not_allowed",
            f"You are not allowed to decide “{approval.title}”; {names} may.",
            approval,
            person,
        )
    if approval.status != "pending":
        if event_id and approval.decided_event == event_id:
            return Outcome(
                "decided", f"You {approval.status} “{approval.title}”.", approval, person
            )
        return Outcome("already", _already(people, approval), approval, person)
    if approval.expires_at is not None and approval.expires_at <= now:
        stored.expire_due(store, now=now)
        current = stored.get_approval(store, request_id)
        return Outcome("expired", f"“{approval.title}” expired before a decision.", current, person)
    won, current = stored.decide(
        store, request_id, status=CHOICES[choice], by=person.key, now=now, event_id=event_id
    )
    if not won:
        assert current is not None  # noqa: S101 - the row was read above and is never deleted
        return Outcome("already", _already(people, current), current, person)
    return Outcome("decided", f"You {CHOICES[choice]} “{approval.title}”.", current, person)


def decision_actions(
    approval: stored.Approval,
    people: Directory,
    messages: Sequence[Mapping[str, Any]] | None = None,
) -> list[RenderedAction]:
    """What a decided (or expired) request runs, from what the request stored:
    `request.notion` {workspace, page, approved: {...}, rejected: {...}}, the request's
    messages edited with the decision and no live buttons, and the requester told."""
    request = approval.request
    decided = approval.status
    who = _name(people, approval.decided_by) if approval.decided_by else None
    text = (
        f"“{approval.title}” {decided} by {who}."
        if who
        else f"“{approval.title}” {decided} (no decision in time)."
    )
    out: list[RenderedAction] = []
    notion = request.get("notion")
    if isinstance(notion, Mapping) and isinstance(notion.get(decided), Mapping):
        out.append(
            RenderedAction(
                connector="notion",
                operation="update",
                destination=str(notion.get("workspace")),
                params={
                    "workspace": str(notion.get("workspace")),
                    "page": str(notion.get("page")),
                    "properties": dict(notion[decided]),
                },
            )
        )
    for message in approval.messages if messages is None else messages:
        platform, destination = str(message.get("platform")), str(message.get("destination"))
        params: dict[str, Any] = {"channel": destination}
        if platform == "discord":
            params |= {"edit": {"message_id": str(message.get("ref"))}, "content": text}
            params["buttons"] = [
                {
                    "label": "Approve",
                    "style": "success",
                    "disabled": True,
                    "custom_id": button_id(approval.id, "approve"),
                },
                {
                    "label": "Reject",
                    "style": "danger",
                    "disabled": True,
                    "custom_id": button_id(approval.id, "reject"),
                },
            ]
        else:
            params |= {"edit": str(message.get("ref")), "text": text}
        out.append(
            RenderedAction(
                connector=platform, operation=None, destination=destination, params=params
            )
        )
    notify = request.get("notify")
    requester = people.find(approval.requester) if approval.requester else None
    if isinstance(notify, Mapping) and requester is not None:
        connector = str(notify.get("connector"))
        address = "user"
        user = requester.discord if connector == "discord" else requester.slack
        if user:
            body = "content" if connector == "discord" else "text"
            out.append(
                RenderedAction(
                    connector=connector,
                    operation=None,
                    destination=str(notify.get("destination")),
                    params={"channel": str(notify.get("destination")), address: user, body: text},
                )
            )
    return out


def _name(people: Directory, key: str | None) -> str:
    person = people.find(key) if key else None
    return person.name if person else str(key)


def _already(people: Directory, approval: stored.Approval) -> str:
    if approval.status == "expired":
        return f"“{approval.title}” expired before a decision."
    when = (
        datetime.fromtimestamp(approval.decided_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        if approval.decided_at
        else "earlier"
    )
    return (
        f"“{approval.title}” was already {approval.status} by "
        f"{_name(people, approval.decided_by)} ({when})."
    )


class ApprovalStepError(ValueError):
    """A step the rule author must fix, said as what to fix."""


def approval_step(
    store: Store,
    people: Directory,
    *,
    rule_id: str,
    document: Mapping[str, Any],
    params: Mapping[str, Any],
    now: float,
) -> dict[str, Any]:
    """`approval.query: {request: {...}}` stores the request (once per event) and gives
    its button ids and deciders; `approval.query: {decide: <button id>, user: <chat id>}`
    decides from a click and gives what to say and what the decision runs."""
    if isinstance(params.get("request"), Mapping):
        return _request(store, people, rule_id, document, params["request"], now)
    if "decide" in params:
        return _decide(store, people, params, now, str(document.get("id") or ""))
    if isinstance(params.get("sweep"), Mapping):
        return _sweep(store, people, params["sweep"], now)
    raise ApprovalStepError(
        "approval.query takes `request: {...}`, `decide: <button id>` or `sweep: {...}`"
    )


def _request(
    store: Store,
    people: Directory,
    rule_id: str,
    document: Mapping[str, Any],
    raw: Mapping[str, Any],
    now: float,
) -> dict[str, Any]:
    to = raw.get("to")
    if not isinstance(to, Mapping):
        raise ApprovalStepError("request.to: give {person: ...} or {role: ...}")
    deciders = deciders_for(people, to)
    if not deciders:
        raise ApprovalStepError(f"request.to {dict(to)} names nobody in people:")
    expires_at = None
    if raw.get("expires"):
        try:
            expires_at = now + parse_duration(str(raw["expires"])).total_seconds()
        except ValueError as exc:
            raise ApprovalStepError(f"request.expires: {exc}") from exc
    requester = people.find(raw.get("requester")) if raw.get("requester") else None
    request_id = approval_id(str(document.get("id")), rule_id, 0)
    approval = stored.create_approval(
        store,
        approval_id=request_id,
        rule_id=rule_id,
        event_id=str(document.get("id")),
        title=str(raw.get("title") or "Approval"),
        deciders=deciders,
        request={k: raw[k] for k in ("notion", "notify") if isinstance(raw.get(k), Mapping)},
        requester=requester.key if requester else None,
        now=now,
        expires_at=expires_at,
    )
    return {
        "id": approval.id,
        "status": approval.status,
        "title": approval.title,
        "approve": button_id(approval.id, "approve"),
        "reject": button_id(approval.id, "reject"),
        "deciders": [p.as_dict() for k in approval.deciders if (p := people.find(k))],
    }


def _decide(
    store: Store, people: Directory, params: Mapping[str, Any], now: float, event_id: str
) -> dict[str, Any]:
    parsed = parse_button(params.get("decide"))
    empty = _empty()
    if parsed is None:
        return {"kind": "unknown", "message": "This is not an approval button.", **empty}
    outcome = decide_click(
        store,
        people,
        request_id=parsed[0],
        choice=parsed[1],
        user_id=str(params.get("user") or ""),
        now=now,
        event_id=event_id,
    )
    view: dict[str, Any] = {
        "kind": outcome.kind,
        "message": outcome.message,
        "status": outcome.approval.status if outcome.approval else None,
        "title": outcome.approval.title if outcome.approval else None,
        **empty,
    }
    if outcome.kind in ("decided", "expired") and outcome.approval is not None:
        _add_actions(view, store, people, outcome.approval)
    return view


def _empty() -> dict[str, Any]:
    return {
        key: []
        for key in ("notion", "discord_edits", "slack_edits", "discord_notes", "slack_notes")
    }


def _add_actions(
    view: dict[str, Any], store: Store, people: Directory, approval: stored.Approval
) -> None:
    """What a decided or expired request runs, as the lists a rule fans out over."""
    messages = stored.request_messages(store, approval)
    for action in decision_actions(approval, people, messages):
        params = dict(action.params)
        if action.connector == "notion":
            view["notion"].append(params)
        elif action.connector == "discord" and "edit" in params:
            view["discord_edits"].append(
                {
                    "ref": params["edit"]["message_id"],
                    "content": params["content"],
                    "approve": button_id(approval.id, "approve"),
                    "reject": button_id(approval.id, "reject"),
                }
            )
        elif action.connector == "slack" and "edit" in params:
            view["slack_edits"].append({"ref": params["edit"], "text": params["text"]})
        else:
            view[f"{action.connector}_notes"].append(
                {"user": params["user"], "text": params.get("content") or params.get("text")}
            )


def _sweep(store: Store, people: Directory, raw: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A schedule's step: expire requests past their deadline (their expiry runs like a
    decision) and remind deciders of requests pending longer than `remind_every`."""
    view: dict[str, Any] = {"expired": [], "reminded": [], **_empty()}
    for approval in stored.expire_due(store, now=now):
        view["expired"].append(approval.title)
        _add_actions(view, store, people, approval)
    if raw.get("remind_every"):
        try:
            every = parse_duration(str(raw["remind_every"])).total_seconds()
        except ValueError as exc:
            raise ApprovalStepError(f"sweep.remind_every: {exc}") from exc
        for approval in stored.reminders_due(store, now=now, every_s=every):
            view["reminded"].append(approval.title)
            for key in approval.deciders:
                person = people.find(key)
                text = f"Reminder: “{approval.title}” is waiting for your decision."
                if person is not None and person.discord:
                    view["discord_notes"].append({"user": person.discord, "text": text})
                elif person is not None and person.slack:
                    view["slack_notes"].append({"user": person.slack, "text": text})
            stored.mark_reminded(store, approval.id, now=now)
    return view
