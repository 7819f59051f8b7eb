"""Discord connector: execute a channel webhook (Discord API v10).

Docs: https://discord.com/developers/docs/resources/webhook#execute-webhook
Rate limits: https://discord.com/developers/docs/topics/rate-limits — a 429 carries
`retry_after` (seconds, float) in the JSON body and `Retry-After` in the headers.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx

from connectors.base import (
    SECRET_REF_SCHEMA,
    ConnectorEnv,
    DeliveryContext,
    RenderedAction,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    redact_url,
    retry,
    secret_option,
)

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
ELLIPSIS = "…"

_embed_schema: dict[str, Any] = {
    "type": "object",
    "description": "A Discord embed.",
    "examples": [{"title": "{{ event.data.entity.title }}", "url": "{{ event.data.entity.url }}"}],
    "additionalProperties": False,
    "properties": {
        "title": {
            "type": "string",
            "description": "Embed title (256 chars).",
            "examples": ["New issue"],
        },
        "description": {
            "type": "string",
            "description": "Embed text (4096 chars).",
            "examples": ["Opened by Ada"],
        },
        "url": {
            "type": "string",
            "description": "Link of the title.",
            "examples": ["https://github.com/o/r/issues/1"],
        },
        "color": {
            "type": ["integer", "string"],
            "description": "Colour as an integer.",
            "examples": [5763719],
        },
        "timestamp": {
            "type": "string",
            "description": "ISO 8601 time shown in the footer.",
            "examples": ["{{ event.time }}"],
        },
        "footer": {
            "type": "object",
            "description": "{text, icon_url}.",
            "examples": [{"text": "Switchboard"}],
        },
        "fields": {
            "type": "array",
            "maxItems": 25,
            "description": "Up to 25 {name, value, inline} fields.",
            "examples": [
                [{"name": "Repo", "value": "{{ event.data.fields.repository }}", "inline": True}]
            ],
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    "inline": {"type": "boolean"},
                },
            },
        },
    },
}

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["channel"],
    "anyOf": [{"required": ["content"]}, {"required": ["embed"]}, {"required": ["embeds"]}],
    "properties": {
        "channel": {
            "type": "string",
            "description": "Name of a discord destination in switchboard.yaml.",
            "examples": ["task-notifications"],
        },
        "content": {
            "type": "string",
            "description": "Message text (2000 chars; longer is cut with …).",
            "examples": ["**{{ event.data.entity.title }}** was opened"],
        },
        "embed": _embed_schema,
        "embeds": {
            "type": "array",
            "maxItems": 10,
            "items": _embed_schema,
            "description": "Up to 10 embeds.",
            "examples": [[{"title": "{{ event.data.entity.title }}"}]],
        },
        "username": {
            "type": "string",
            "description": "Overrides the webhook's name.",
            "examples": ["Switchboard"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["webhook_url"],
    "properties": {
        "webhook_url": {
            **SECRET_REF_SCHEMA,
            "description": "The channel webhook URL (a secret: it grants posting).",
            "examples": [{"env": "DISCORD_WEBHOOK_URL"}],
        },
        "username": {
            "type": "string",
            "description": "Default sender name.",
            "examples": ["Switchboard"],
        },
    },
}


class DiscordConnector:
    """Posts `content` and embeds through a webhook, with `?wait=true` to get the message id."""

    name: ClassVar[str] = "discord"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "channel"
    #: Discord's webhook limits: about 5 requests per 2 s per webhook, and 30 messages a
    #: minute per channel. A destination's `rate_limit` setting replaces them.
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = ((5, 2.0), (30, 60.0))

    def __init__(self, env: ConnectorEnv) -> None:
        self._http = env.http

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        url = secret_option(ctx.destination, "webhook_url")
        if url is None:
            return fail("discord destination has no webhook_url")
        try:
            body = build_message(action.params, ctx)
        except ValueError as exc:
            return fail(f"cannot build the Discord message: {exc}")
        try:
            response = await self._http.post(url, params={"wait": "true"}, json=body)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # Retrying cannot fix the URL, and its text is the secret: name only the problem.
            return fail(
                f"discord webhook_url is not a usable https URL ({type(exc).__name__}); "
                "check the destination's secret"
            )
        except httpx.TimeoutException:
            return retry(None, f"timed out posting to {redact_url(url)}")
        except httpx.TransportError as exc:
            return retry(None, f"could not reach {redact_url(url)}: {type(exc).__name__}")
        return classify_discord(response, ctx)


def build_message(params: Any, ctx: DeliveryContext) -> dict[str, Any]:
    """The execute-webhook JSON body, within Discord's limits, mentions off by default."""
    body: dict[str, Any] = {"allowed_mentions": {"parse": []}}
    if content := params.get("content"):
        body["content"] = _truncate(str(content), CONTENT_LIMIT)
    embeds = list(params.get("embeds") or [])
    if params.get("embed"):
        embeds.insert(0, params["embed"])
    if embeds:
        body["embeds"] = [_embed(e) for e in embeds[:10]]
    username = params.get("username") or (
        ctx.destination.options.get("username") if ctx.destination else None
    )
    if username:
        body["username"] = str(username)
    return body


def _embed(raw: dict[str, Any]) -> dict[str, Any]:
    embed = dict(raw)
    if "title" in embed:
        embed["title"] = _truncate(str(embed["title"]), TITLE_LIMIT)
    if "description" in embed:
        embed["description"] = _truncate(str(embed["description"]), DESCRIPTION_LIMIT)
    if isinstance(embed.get("color"), str):
        embed["color"] = _color(embed["color"])
    return embed


def _color(text: str) -> int:
    """A colour string as Discord's integer: `#RRGGBB` and hex letters are hex, digits decimal."""
    value = text.strip()
    try:
        if value.startswith("#"):
            return int(value[1:], 16)
        return int(value) if value.isdigit() else int(value, 16)
    except ValueError:
        raise ValueError(
            f"embed color {text!r} is not a colour; use an integer or #RRGGBB"
        ) from None


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


_TOKEN_IN_PATH = re.compile(r"/webhooks/\d+/([^/]+)")


def classify_discord(response: httpx.Response, ctx: DeliveryContext) -> SendResult:
    """Map Discord's answer to ok / retry(after) / fail."""
    where = redact_url(response.request.url)
    token = _TOKEN_IN_PATH.search(response.request.url.path)
    if response.is_success:
        message_id = None
        try:
            data = response.json()
            message_id = str(data["id"]) if isinstance(data, dict) and "id" in data else None
        except ValueError:
            message_id = None
        return ok(message_id, status_code=response.status_code, pause_s=_spent_budget(response))
    detail = _error_detail(response)
    if token:
        # Discord or a proxy in front of it may quote the request path in an error page.
        detail = detail.replace(token.group(1), "REDACTED")
    if response.status_code == 429:
        return retry(
            _retry_after(response, ctx), f"rate limited by Discord ({detail})", status_code=429
        )
    return classify_status(
        response.status_code,
        reason=f"Discord answered {response.status_code} for {where}: {detail}",
    )


def _spent_budget(response: httpx.Response) -> float | None:
    """Seconds until the bucket refills when Discord says it is empty, else None.

    Learning from `X-RateLimit-Remaining: 0` lets every worker hold off before the
    next request turns into a 429, whatever limits the destination was configured with.
    """
    if response.headers.get("x-ratelimit-remaining", "").strip() != "0":
        return None
    try:
        reset_after = float(response.headers.get("x-ratelimit-reset-after", ""))
    except ValueError:
        return None
    return reset_after if 0 < reset_after < 3600 else None


def _retry_after(response: httpx.Response, ctx: DeliveryContext) -> float | None:
    """The most precise wait Discord gave: body `retry_after`, then the headers."""
    try:
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("retry_after"), int | float):
            return float(data["retry_after"])
    except ValueError:
        pass
    reset_after = parse_retry_after(response.headers.get("x-ratelimit-reset-after"), now=ctx.now)
    if reset_after is not None:
        return reset_after
    return parse_retry_after(response.headers.get("retry-after"), now=ctx.now)


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, dict) and "message" in data:
        code = f" (code {data['code']})" if "code" in data else ""
        return f"{str(data['message'])[:200]}{code}"
    return response.text[:200]
