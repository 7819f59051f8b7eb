"""Discord message bodies: content, embeds and button rows from rule params, within limits."""

from __future__ import annotations

from typing import Any

from connectors.base import (
    DeliveryContext,
)

#: https://discord.com/developers/docs/components/reference#button-button-styles
BUTTON_STYLES = {"primary": 1, "secondary": 2, "success": 3, "danger": 4, "link": 5}

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
ELLIPSIS = "…"


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
    if components := params.get("components"):
        body["components"] = list(components)
    elif buttons := params.get("buttons"):
        body["components"] = button_rows(buttons)
    username = params.get("username") or (
        ctx.destination.options.get("username") if ctx.destination else None
    )
    if username:
        body["username"] = str(username)
    return body


def button_rows(buttons: list[Any]) -> list[dict[str, Any]]:
    """Buttons as action rows of five: https://discord.com/developers/docs/components/reference"""
    out = []
    for raw in buttons[:25]:
        style = str(raw.get("style") or ("link" if raw.get("url") else "primary"))
        if style not in BUTTON_STYLES:
            raise ValueError(f"button style {style!r}; use one of {', '.join(BUTTON_STYLES)}")
        button: dict[str, Any] = {"type": 2, "style": BUTTON_STYLES[style], "label": raw["label"]}
        if style == "link":
            button["url"] = str(raw.get("url") or "")
        else:
            button["custom_id"] = str(raw.get("custom_id") or raw["label"])[:100]
        if _truthy(raw.get("disabled")):
            button["disabled"] = True
        out.append(button)
    return [{"type": 1, "components": out[i : i + 5]} for i in range(0, len(out), 5)]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "1"}
    return bool(value)


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
