"""Slack message content: Block Kit blocks and text from rule params, within Slack's limits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("connectors.slack")


# https://docs.slack.dev/reference/methods/chat.postMessage#truncating (40,000 characters),
# https://docs.slack.dev/reference/block-kit/blocks/section-block (3000), header (150).
TEXT_LIMIT = 40_000
SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Message:
    """The content of one message, already within Slack's limits."""

    text: str
    blocks: list[dict[str, Any]] | None
    extra: dict[str, Any]


def build_message(params: Mapping[str, Any]) -> Message:
    """Text, blocks and options for Slack, within its limits; text falls back to the blocks."""
    blocks = [_block(b) for b in params["blocks"]] if params.get("blocks") is not None else None
    if params.get("buttons"):
        actions = {"type": "actions", "elements": [_button(b) for b in params["buttons"]]}
        if params.get("buttons_block_id"):
            actions = {**actions, "block_id": str(params["buttons_block_id"])}
        blocks = [*(blocks or []), actions]
    text = str(params.get("text") or "") or _fallback_text(blocks or []) or "New message"
    extra = {
        key: params[key]
        for key in ("reply_broadcast", "unfurl_links", "unfurl_media", "username", "icon_emoji")
        if key in params
    }
    return Message(text=_truncate(text, TEXT_LIMIT, "text"), blocks=blocks, extra=extra)


def _button(raw: Mapping[str, Any]) -> dict[str, Any]:
    """https://docs.slack.dev/reference/block-kit/block-elements/button-element"""
    button: dict[str, Any] = {
        "type": "button",
        "action_id": str(raw.get("action_id") or raw["label"])[:255],
        "text": {"type": "plain_text", "text": str(raw["label"]), "emoji": True},
    }
    if raw.get("style") in ("primary", "danger"):
        button["style"] = raw["style"]
    for key in ("value", "url"):
        if raw.get(key):
            button[key] = str(raw[key])
    return button


def _block(raw: Mapping[str, Any]) -> dict[str, Any]:
    block = dict(raw)
    limit = {"section": SECTION_TEXT_LIMIT, "header": HEADER_TEXT_LIMIT}.get(block.get("type", ""))
    text = block.get("text")
    if limit and isinstance(text, Mapping) and isinstance(text.get("text"), str):
        block["text"] = {**text, "text": _truncate(text["text"], limit, f"{block['type']} text")}
    return block


def _fallback_text(blocks: list[dict[str, Any]]) -> str:
    """The readable text of header, section and context blocks, for notifications."""
    parts: list[str] = []
    for block in blocks:
        items = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        parts += [
            item["text"]
            for item in items
            if isinstance(item, Mapping) and isinstance(item.get("text"), str)
        ]
    return "\n".join(p for p in parts if p.strip())


def _truncate(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    log.warning("slack %s of %d characters cut to %d", what, len(text), limit)
    return text[: limit - 1] + ELLIPSIS
