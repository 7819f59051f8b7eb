"""Answer a chat command in place: Discord's deferred interaction or Slack's response_url.

The command sources (hub/sources/discord_interactions.py, slack_commands.py) answer within
the provider's 3 seconds with "thinking…"; the rule's answer comes later through the
short-lived credentials in `event.data.fields.followup`:

- Discord: `PATCH {url}/messages/@original` edits the deferred message (token: 15 min).
- Slack: `POST {response_url}` with `text` and `response_type` (30 min, 5 posts).

The URL is a secret for its lifetime: it never appears in a reason, and only the two
providers' hosts are accepted, so event data cannot point the hub elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors.base import (
    Connector,
    ConnectorEnv,
    DeliveryContext,
    RenderedAction,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    retry,
)

DISCORD_KIND = "discord.interaction"
SLACK_KIND = "slack.response_url"
#: Where each kind of follow-up may go: the provider's own API host, over HTTPS.
ALLOWED_HOSTS: dict[str, tuple[str, ...]] = {
    DISCORD_KIND: ("discord.com", "discordapp.com"),
    SLACK_KIND: ("hooks.slack.com",),
}
CONTENT_LIMIT = {DISCORD_KIND: 2000, SLACK_KIND: 40_000}
ELLIPSIS = "…"

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "kind", "text"],
    "properties": {
        "url": {
            "type": "string",
            "description": "The follow-up URL of the command event (a short-lived secret).",
            "examples": ["{{ event.data.fields.followup.url }}"],
        },
        "kind": {
            "type": "string",
            "description": "discord.interaction or slack.response_url.",
            "examples": ["{{ event.data.fields.followup.kind }}"],
        },
        "expires_at": {
            "type": "string",
            "description": "When the URL stops working (RFC 3339); later sends fail at once.",
            "examples": ["{{ event.data.fields.followup.expires_at }}"],
        },
        "text": {
            "type": "string",
            "description": "The answer; cut with … at the provider's limit.",
            "examples": ["{{ event.data.fields.user.name }}, you have 3 open tasks"],
        },
        "visibility": {
            "type": "string",
            "enum": ["ephemeral", "in_channel"],
            "description": "Slack only: who sees the answer (default ephemeral).",
            "examples": ["ephemeral"],
        },
    },
}


class ReplyConnector(Connector):
    """Sends a rule's answer to the chat command that triggered it."""

    name: ClassVar[str] = "reply"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    destination_param: ClassVar[str | None] = None

    def __init__(self, env: ConnectorEnv) -> None:
        self._http = env.http

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        params = action.params
        kind = str(params.get("kind", ""))
        if kind not in ALLOWED_HOSTS:
            return fail(f"reply kind {kind!r} is not one of {', '.join(ALLOWED_HOSTS)}")
        try:
            url = httpx.URL(str(params.get("url", "")))
        except httpx.InvalidURL:
            return fail(f"the {kind} follow-up URL is not a URL")
        if url.scheme != "https" or url.host not in ALLOWED_HOSTS[kind]:
            return fail(f"the {kind} follow-up URL must be https://{ALLOWED_HOSTS[kind][0]}/…")
        expired = _expired(params.get("expires_at"), ctx.now)
        if expired:
            return fail(f"the {kind} follow-up expired at {expired}; the answer came too late")
        text = _cut(str(params.get("text", "")), CONTENT_LIMIT[kind])
        try:
            if kind == DISCORD_KIND:
                response = await self._http.patch(
                    url.join(url.path.rstrip("/") + "/messages/@original"),
                    json={"content": text, "allowed_mentions": {"parse": []}},
                )
            else:
                visibility = str(params.get("visibility", "ephemeral"))
                response = await self._http.post(
                    url, json={"text": text, "response_type": visibility}
                )
        except httpx.TimeoutException:
            return retry(None, f"timed out answering the {kind}")
        except httpx.TransportError as exc:
            return retry(None, f"could not reach {url.host}: {type(exc).__name__}")
        return _classify(response, kind, ctx)


def _classify(response: httpx.Response, kind: str, ctx: DeliveryContext) -> SendResult:
    status = response.status_code
    if response.is_success:
        return ok(status_code=status)
    detail = _detail(response)
    if status == 404:
        # Discord "Unknown Webhook" / Slack "expired_url", "used_url": the window closed.
        return fail(f"the {kind} follow-up is no longer valid ({detail})", status_code=404)
    after = None
    if status == 429:
        after = _retry_after_body(response)
        if after is None:
            after = parse_retry_after(response.headers.get("retry-after"), now=ctx.now)
    return classify_status(status, reason=f"{kind} answered {status}: {detail}", after=after)


def _retry_after_body(response: httpx.Response) -> float | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("retry_after") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _detail(response: httpx.Response) -> str:
    """The provider's short error text; never the request URL, which holds the token."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:200]
    return response.reason_phrase


def _expired(expires_at: object, now: datetime) -> str | None:
    if not isinstance(expires_at, str) or not expires_at.strip():
        return None
    try:
        when = datetime.fromisoformat(expires_at.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return expires_at if now >= when else None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
