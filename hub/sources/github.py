"""GitHub repository/organization webhooks.

Docs: https://docs.github.com/en/webhooks/webhook-events-and-payloads
Signature: `X-Hub-Signature-256: sha256=HMAC_SHA256(secret, raw body)`
(https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).
Delivery id: `X-GitHub-Delivery`; event name: `X-GitHub-Event`.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from hub.clock import Clock
from hub.errors import MalformedPayload, SignatureError
from hub.events import Actor, Entity, Event, event_id_for
from hub.secrets import Secret
from hub.sources._github_events import GITHUB_EVENT_TYPES
from hub.sources._http import (
    check_hmac_sha256,
    check_json_object,
    parse_json_object,
    parse_time,
    require_header,
)
from hub.sources._values import mapping, source_path, str_or_none, type_word
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source, Verdict

#: Payload keys that name the main object of an event, most specific first.
_SUBJECT_KEYS = (
    "review",
    "comment",
    "pull_request",
    "issue",
    "release",
    "workflow_run",
    "check_run",
    "deployment",
    "discussion",
    "milestone",
    "label",
    "package",
    "alert",
)


class GitHubSource(Source):
    """Verifies GitHub deliveries and turns them into `github.<event>.<action>` events."""

    name: ClassVar[str] = "github"
    settings_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    event_types: ClassVar[tuple[str, ...]] = GITHUB_EVENT_TYPES

    def sign(self, body: bytes, secret: str, *, now: datetime) -> dict[str, str]:
        """GitHub's HMAC-SHA256 of the body with the webhook secret."""
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}"}

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        if secret is None:
            raise SignatureError("no secret is configured for source 'github'")
        signature = require_header(request.headers, "X-Hub-Signature-256", error=SignatureError)
        check_hmac_sha256(
            request.body, secret.reveal().encode(), signature, header="X-Hub-Signature-256"
        )
        event = require_header(request.headers, "X-GitHub-Event", error=MalformedPayload)
        delivery = require_header(request.headers, "X-GitHub-Delivery", error=MalformedPayload)
        if not (event.isascii() and event.replace("_", "").isalnum()):
            raise MalformedPayload(f"X-GitHub-Event {event!r} is not an event name")
        check_json_object(_json_body(request.headers, request.body))
        return Verdict(provider_delivery_id=delivery)

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        event_name = raw.headers["x-github-event"]
        payload = parse_json_object(_json_body(raw.headers, raw.body))
        action = payload.get("action")
        type_ = f"github.{type_word(event_name)}"
        if isinstance(action, str) and action:
            type_ += f".{type_word(action)}"
        repo = mapping(payload.get("repository"))
        org = mapping(payload.get("organization"))
        source = source_path("github", repo.get("full_name") or org.get("login"))
        entity, subject, when = _entity(event_name, payload, repo)
        return [
            Event(
                id=event_id_for("github", raw.provider_delivery_id),
                source=source,
                type=type_,
                subject=subject,
                time=when or raw.received_at,
                entity=entity,
                actor=_actor(event_name, payload),
                changes=_changes(event_name, payload),
                fields=_fields(event_name, payload, repo),
                raw=payload,
            )
        ]


def _json_body(headers: Mapping[str, str], body: bytes) -> bytes:
    """GitHub can send `application/x-www-form-urlencoded` with the JSON in `payload`.

    Only a body that starts with `payload=` is read as a form: curl labels any `-d` body
    as a form, and admins test with curl.
    """
    is_form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    if is_form and body.startswith(b"payload="):
        try:
            form = urllib.parse.parse_qs(
                body.decode("utf-8"), keep_blank_values=True, errors="strict"
            )
        except UnicodeDecodeError as exc:
            raise MalformedPayload(
                "form body is not valid URL-encoded UTF-8", code="bad_encoding"
            ) from exc
        # An empty `payload=` is kept (as "") so the JSON check reports it.
        return form["payload"][0].encode("utf-8")
    return body


def _entity(
    event_name: str, payload: Mapping[str, Any], repo: Mapping[str, Any]
) -> tuple[Entity, str | None, Any]:
    repo_name = str(repo.get("full_name") or "")
    if event_name == "push":
        ref = str(payload.get("ref") or "")
        kind = "tag" if ref.startswith("refs/tags/") else "branch"
        short = ref.split("/", 2)[-1] if ref.count("/") >= 2 else ref
        head = mapping(payload.get("head_commit"))
        return (
            Entity(
                kind=kind,
                id=f"{repo_name}@{ref}",
                url=str_or_none(payload.get("compare")),
                title=short or None,
            ),
            ref or None,
            parse_time(head.get("timestamp")),
        )
    if event_name == "ping":
        hook_id = str(payload.get("hook_id") or mapping(payload.get("hook")).get("id") or "hook")
        return (
            Entity(
                kind="hook",
                id=hook_id,
                url=str_or_none(repo.get("html_url")),
                title=str_or_none(payload.get("zen")),
            ),
            f"hooks/{hook_id}",
            None,
        )
    for key in _SUBJECT_KEYS:
        obj = mapping(payload.get(key))
        if not obj:
            continue
        number = obj.get("number")
        parent = mapping(payload.get("pull_request")) or mapping(payload.get("issue"))
        title = (
            obj.get("title")
            or obj.get("name")
            or obj.get("tag_name")
            or parent.get("title")
            or None
        )
        ident = f"{repo_name}#{number}" if number is not None else str(obj.get("id", ""))
        subject = f"{key}s/{number}" if number is not None else f"{key}s/{obj.get('id', '')}"
        when = parse_time(obj.get("updated_at")) or parse_time(obj.get("submitted_at"))
        return (
            Entity(
                kind=key,
                id=ident or key,
                url=str_or_none(obj.get("html_url")),
                title=str_or_none(title),
            ),
            subject,
            when,
        )
    if repo:
        return (
            Entity(
                kind="repository",
                id=repo_name or str(repo.get("id")),
                url=str_or_none(repo.get("html_url")),
                title=repo_name or None,
            ),
            f"repos/{repo_name}" if repo_name else None,
            None,
        )
    org = mapping(payload.get("organization"))
    login = str(org.get("login") or mapping(payload.get("sender")).get("login") or "github")
    return Entity(kind="organization", id=login, title=login), None, None


def _actor(event_name: str, payload: Mapping[str, Any]) -> Actor:
    sender = mapping(payload.get("sender"))
    if event_name == "push":
        pusher = mapping(payload.get("pusher"))
        return Actor(
            id=str_or_none(sender.get("id")),
            name=str_or_none(sender.get("login") or pusher.get("name")),
            email=str_or_none(pusher.get("email")),
        )
    return Actor(
        id=str_or_none(sender.get("id")), name=str_or_none(sender.get("login")), email=None
    )


def _changes(event_name: str, payload: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """GitHub's `changes` ({"title": {"from": old}}) as {from, to} pairs.

    `to` is the value GitHub states, else the same key on the changed object: the subject,
    or the object named like the event (`repository`, `organization`, `project_card`...).
    """
    raw = mapping(payload.get("changes"))
    target: Mapping[str, Any] = {}
    for key in (*_SUBJECT_KEYS, event_name):
        if payload.get(key):
            target = mapping(payload.get(key))
            break
    out: dict[str, dict[str, Any]] = {}
    for name, change in raw.items():
        change_map = mapping(change)
        if "from" in change_map:
            new = change_map["to"] if "to" in change_map else target.get(name)
            out[name] = {"from": change_map["from"], "to": new}
    return out


def _logins(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["login"]) for i in items if isinstance(i, Mapping) and "login" in i]


def _fields(event_name: str, payload: Mapping[str, Any], repo: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event": event_name,
        "action": payload.get("action"),
        "repository": repo.get("full_name"),
        "sender": mapping(payload.get("sender")).get("login"),
    }
    for key in ("issue", "pull_request"):
        obj = mapping(payload.get(key))
        if obj:
            fields.update(
                number=obj.get("number"),
                title=obj.get("title"),
                state=obj.get("state"),
                author=mapping(obj.get("user")).get("login"),
                labels=[
                    str(lbl.get("name"))
                    for lbl in obj.get("labels") or []
                    if isinstance(lbl, Mapping)
                ],
                assignees=_logins(obj.get("assignees")),
                milestone=mapping(obj.get("milestone")).get("title"),
            )
            if key == "pull_request":
                fields.update(
                    draft=obj.get("draft"),
                    merged=obj.get("merged"),
                    base=mapping(obj.get("base")).get("ref"),
                    head=mapping(obj.get("head")).get("ref"),
                )
            break
    if comment := mapping(payload.get("comment")):
        fields["comment"] = comment.get("body")
    if review := mapping(payload.get("review")):
        fields.update(review_state=review.get("state"), review_body=review.get("body"))
    if release := mapping(payload.get("release")):
        fields.update(
            tag=release.get("tag_name"),
            name=release.get("name"),
            prerelease=release.get("prerelease"),
            draft=release.get("draft"),
        )
    if run := mapping(payload.get("workflow_run")):
        fields.update(
            workflow=run.get("name") or mapping(payload.get("workflow")).get("name"),
            status=run.get("status"),
            conclusion=run.get("conclusion"),
            branch=run.get("head_branch"),
            run_number=run.get("run_number"),
        )
    if event_name == "push":
        ref = str(payload.get("ref") or "")
        commits = payload.get("commits") if isinstance(payload.get("commits"), list) else []
        fields.update(
            ref=ref,
            branch=ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None,
            tag=ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None,
            before=payload.get("before"),
            after=payload.get("after"),
            created=payload.get("created"),
            deleted=payload.get("deleted"),
            forced=payload.get("forced"),
            commit_count=len(commits or []),
            commits=[
                {
                    "id": c.get("id"),
                    "message": c.get("message"),
                    "author": mapping(c.get("author")).get("name"),
                    "url": c.get("url"),
                }
                for c in (commits or [])
                if isinstance(c, Mapping)
            ],
        )
    return fields
