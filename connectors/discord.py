"""Discord connector: a channel webhook, or a bot posting to a channel (Discord API v10).

Docs: https://discord.com/developers/docs/resources/webhook#execute-webhook and
https://discord.com/developers/docs/resources/message#create-message
Rate limits: https://discord.com/developers/docs/topics/rate-limits — a 429 carries
`retry_after` (seconds, float) in the JSON body and `Retry-After` in the headers.
`mode: upsert` edits the message sent earlier for the same entity (PATCH) instead of
posting a new one, so a task card follows the task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
            "description": "Overrides the webhook's name (webhooks only).",
            "examples": ["Switchboard"],
        },
        "mode": {
            "type": "string",
            "enum": ["post", "upsert"],
            "description": "upsert: edit the message sent earlier for the same entity.",
            "examples": ["upsert"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "oneOf": [{"required": ["webhook_url"]}, {"required": ["bot_token", "channel_id"]}],
    "properties": {
        "webhook_url": {
            **SECRET_REF_SCHEMA,
            "description": "The channel webhook URL (a secret: it grants posting).",
            "examples": [{"env": "DISCORD_WEBHOOK_URL"}],
        },
        "bot_token": {
            **SECRET_REF_SCHEMA,
            "description": "A bot token, instead of a webhook (with channel_id).",
            "examples": [{"env": "DISCORD_BOT_TOKEN"}],
        },
        "channel_id": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "The channel the bot posts to.",
            "examples": ["1213445701632131072"],
        },
        "api_url": {
            "type": "string",
            "description": "Discord API base for bot mode (a proxy or a test double).",
            "default": "https://discord.com/api/v10",
            "examples": ["https://discord.com/api/v10"],
        },
        "username": {
            "type": "string",
            "description": "Default sender name (webhooks only).",
            "examples": ["Switchboard"],
        },
    },
}

API_URL = "https://discord.com/api/v10"


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
        target = _target(ctx)
        if target is None:
            return fail("discord destination has neither webhook_url nor bot_token + channel_id")
        try:
            body = build_message(action.params, ctx)
        except ValueError as exc:
            return fail(f"cannot build the Discord message: {exc}")
        if target.bot:
            body.pop("username", None)  # a bot posts under its own name
        earlier = ctx.previous_ref or ctx.entity_refs.get(action.operation or "")
        try:
            if action.params.get("mode") == "upsert" and earlier:
                response = await self._http.patch(
                    f"{target.messages_url}/{earlier}", json=body, headers=target.headers
                )
                if response.status_code != 404:  # 404: the message was deleted; post anew
                    return classify_discord(response, ctx, target.secret)
            response = await self._http.post(
                target.post_url, params=target.post_params, json=body, headers=target.headers
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # Retrying cannot fix the URL, and its text may be the secret: name the problem.
            return fail(
                f"discord {target.what} is not a usable https URL ({type(exc).__name__}); "
                "check the destination's settings"
            )
        except httpx.TimeoutException:
            return retry(None, f"timed out posting to {redact_url(target.post_url)}")
        except httpx.TransportError as exc:
            return retry(
                None, f"could not reach {redact_url(target.post_url)}: {type(exc).__name__}"
            )
        return classify_discord(response, ctx, target.secret)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a message goes: a webhook (the URL is the secret) or a bot and a channel."""

    post_url: str
    messages_url: str
    post_params: dict[str, str]
    headers: dict[str, str]
    secret: str
    bot: bool
    what: str


def _target(ctx: DeliveryContext) -> _Target | None:
    url = secret_option(ctx.destination, "webhook_url")
    if url is not None:
        return _Target(
            post_url=url,
            messages_url=f"{url.split('?')[0].rstrip('/')}/messages",
            post_params={"wait": "true"},
            headers={},
            secret=url,
            bot=False,
            what="webhook_url",
        )
    token = secret_option(ctx.destination, "bot_token")
    options = ctx.destination.options if ctx.destination else {}
    channel = options.get("channel_id")
    if token is None or not channel:
        return None
    api = str(options.get("api_url") or API_URL).rstrip("/")
    messages = f"{api}/channels/{channel}/messages"
    return _Target(
        post_url=messages,
        messages_url=messages,
        post_params={},
        headers={"Authorization": f"Bot {token}"},
        secret=token,
        bot=True,
        what="api_url",
    )


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


def classify_discord(
    response: httpx.Response, ctx: DeliveryContext, secret: str | None = None
) -> SendResult:
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
    if secret:
        detail = detail.replace(secret, "REDACTED")
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
