"""Slack Web API plumbing: message refs, one SDK call, and error classification."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors._slack_message import Message
from connectors.base import (
    DeliveryContext,
    Destination,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    redact_url,
    retry,
)

log = logging.getLogger("connectors.slack")


_REF = re.compile(r"([A-Z0-9]+):(\d+\.\d+)(?::(\d+\.\d+))?")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")

#: aiohttp's errors for a URL no retry can fix (NonHttpUrlClientError is not an InvalidURL).
_BAD_URL = (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A posted message as `channel:ts`, or `channel:ts:thread_ts` for a thread reply."""

    channel: str
    ts: str
    thread_ts: str | None = None

    @property
    def root_ts(self) -> str:
        return self.thread_ts or self.ts

    def __str__(self) -> str:
        suffix = f":{self.thread_ts}" if self.thread_ts else ""
        return f"{self.channel}:{self.ts}{suffix}"

    @classmethod
    def parse(cls, text: str | None) -> MessageRef | None:
        match = _REF.fullmatch(text or "")
        return cls(*match.groups()) if match else None


class _ApiCall:
    """One Web API call through slack-sdk, its answer mapped to a SendResult."""

    def __init__(
        self,
        client: AsyncWebClient,
        dest: Destination,
        ctx: DeliveryContext,
        *,
        secrets: tuple[str, ...],
        base_url: str,
    ) -> None:
        self.client, self.dest, self.ctx = client, dest, ctx
        self.secrets, self.base_url = secrets, base_url

    async def post(self, channel: str, message: Message, thread_ts: str | None) -> SendResult:
        kwargs: dict[str, Any] = {"channel": channel, "text": message.text, **message.extra}
        if message.blocks is not None:
            kwargs["blocks"] = message.blocks
        if thread_ts is None:
            kwargs.pop("reply_broadcast", None)
        else:
            kwargs["thread_ts"] = thread_ts
        result, _ = await self._call("chat.postMessage", kwargs, thread_ts)
        return result

    async def open_dm(self, user: str) -> str | SendResult:
        """The DM channel id with `user`, or why there is none."""
        result, _ = await self._call("conversations.open", {"users": user}, None)
        if result.outcome == "fail":
            return fail(f"cannot open a DM with Slack user {user}: {result.reason}")
        if result.outcome != "ok" or not result.ref:
            return result
        return result.ref

    async def update(self, target: MessageRef, message: Message) -> tuple[SendResult, str | None]:
        kwargs: dict[str, Any] = {"channel": target.channel, "ts": target.ts, "text": message.text}
        # chat.update keeps the old blocks when none are given; [] clears them.
        kwargs["blocks"] = message.blocks if message.blocks is not None else []
        return await self._call("chat.update", kwargs, target.thread_ts)

    async def _call(
        self, method: str, kwargs: dict[str, Any], thread_ts: str | None
    ) -> tuple[SendResult, str | None]:
        """The result, and Slack's error code when it answered `ok: false`."""
        where = f"{redact_url(self.base_url + method)} (destination '{self.dest.name}')"
        try:
            if method == "chat.update":
                response = await self.client.chat_update(**kwargs)
            elif method == "conversations.open":
                response = await self.client.conversations_open(**kwargs)
            else:
                response = await self.client.chat_postMessage(**kwargs)
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            result = classify_api_error(
                exc, method=method, ctx=self.ctx, where=where, secrets=self.secrets
            )
            return result, error if isinstance(error, str) else None
        except _BAD_URL as exc:
            reason = (
                f"slack base_url of destination '{self.dest.name}' is not a usable http(s) URL "
                f"({type(exc).__name__}: {_scrub(str(exc), self.secrets)})"
            )
            return fail(reason), None
        except Exception as exc:  # network errors, timeouts, bodies the SDK cannot read
            return _transport_retry(exc, where, self.secrets), None
        data = response.data if isinstance(response.data, dict) else {}
        if method == "conversations.open":
            opened = data.get("channel")
            dm = opened.get("id") if isinstance(opened, dict) else None
            if not isinstance(dm, str):
                return retry(None, "slack conversations.open answered ok without a channel"), None
            return ok(dm, status_code=response.status_code), None
        channel, ts = data.get("channel"), data.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            # Slack said ok, so the message exists; a retry would post it twice.
            log.warning("slack %s answered ok without channel/ts; no ref is kept", method)
            return ok(None, status_code=response.status_code), None
        ref = MessageRef(channel, ts, thread_ts)
        return ok(str(ref), status_code=response.status_code), None


def _entity_ref(ctx: DeliveryContext, channel: str) -> MessageRef | None:
    """The entity's earlier message in this destination, if it is still in its channel."""
    for ref in ctx.entity_refs.values():
        parsed = MessageRef.parse(ref)
        # A destination moved to another channel starts over there.
        if parsed and not (_CHANNEL_ID.fullmatch(channel) and parsed.channel != channel):
            return parsed
    return None


def _url_secrets(url: str) -> tuple[str, ...]:
    """The webhook URL and its path: a proxy's error page may quote either."""
    path = url.split("://", 1)[-1].partition("/")[2]
    return tuple(s for s in (url, "/" + path if path else "") if s)


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "REDACTED")
    return text


def _transport_retry(exc: Exception, where: str, secrets: tuple[str, ...]) -> SendResult:
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return retry(None, f"timed out sending to {where}")
    if isinstance(exc, aiohttp.ClientError):
        return retry(None, f"could not reach {where}: {type(exc).__name__}")
    detail = _scrub(str(exc), secrets)[:200]
    return retry(None, f"unreadable answer from {where}: {type(exc).__name__}: {detail}")


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Error codes of https://docs.slack.dev/reference/methods/chat.postMessage#errors and
# .../chat.update#errors. Retried: Slack's own trouble, limits and migrations; the rest
# needs a person, so it fails into the dead-letter queue with a hint.
RETRY_ERRORS = _codes(
    "ratelimited rate_limited message_limit_exceeded internal_error fatal_error "
    "service_unavailable request_timeout team_added_to_org org_login_required update_failed "
    "external_channel_migrating streaming_state_conflict"
)
_AUTH_ERRORS = _codes(
    "invalid_auth not_authed account_inactive token_revoked token_expired "
    "not_allowed_token_type two_factor_setup_required"
)
_PERMISSION_ERRORS = _codes(
    "no_permission access_denied accesslimited restricted_action "
    "restricted_action_read_only_channel restricted_action_thread_only_channel "
    "restricted_action_non_threadable_channel ekm_access_denied team_access_not_granted "
    "enterprise_is_restricted as_user_not_supported cant_update_message edit_window_closed "
    "cant_broadcast_message team_not_found slack_connect_file_link_sharing_blocked "
    "slack_connect_canvas_sharing_blocked"
)
_CONTENT_ERRORS = _codes(
    "msg_too_long msg_blocks_too_long no_text invalid_blocks invalid_blocks_format "
    "too_many_attachments invalid_attachments invalid_arguments invalid_arg_name "
    "invalid_array_arg invalid_charset invalid_form_data invalid_post_type missing_post_type "
    "block_mismatch markdown_text_conflict invalid_metadata_format invalid_metadata_schema "
    "metadata_too_large metadata_must_be_sent_from_app no_dual_broadcast_content_update "
    "cannot_reply_to_message"
)
_HINTS: dict[str, str] = {
    "channel_not_found": "check the destination's `channel` (a channel ID like C0123456789) "
    "and invite the app to private channels",
    "not_in_channel": "invite the app to the channel (/invite @app) or grant chat:write.public",
    "is_archived": "the channel is archived; unarchive it or use another channel",
    "is_inactive": "the channel is archived or frozen; the message can no longer be edited",
    "message_not_found": "the message to edit no longer exists",
    "deprecated_endpoint": "Slack retired this method; upgrade Switchboard",
    "method_deprecated": "Slack retired this method; upgrade Switchboard",
}
_WEBHOOK_HINTS: dict[str, str] = {
    **dict.fromkeys(
        ("invalid_token", "no_service", "no_service_id", "no_team", "team_disabled"),
        "the webhook was revoked or its URL is wrong; create one and update the secret",
    ),
    **dict.fromkeys(
        ("channel_not_found", "channel_is_archived"),
        "the webhook's channel is gone or archived; create a webhook for another channel",
    ),
    **dict.fromkeys(
        ("action_prohibited", "posting_to_general_channel_denied"),
        "the workspace forbids this webhook to post there",
    ),
}


def classify_api_error(
    exc: SlackApiError, *, method: str, ctx: DeliveryContext, where: str, secrets: tuple[str, ...]
) -> SendResult:
    """Map a Web API error answer (`ok: false`, 429, 5xx, unreadable body) to retry or fail."""
    response = exc.response  # an AsyncSlackResponse, or aiohttp's response for a non-JSON body
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    data = getattr(response, "data", None)
    headers = getattr(response, "headers", None) or {}
    after = parse_retry_after(headers.get("Retry-After"), now=ctx.now)
    if status == 429 or (isinstance(data, dict) and data.get("error") == "ratelimited"):
        return retry(after, f"rate limited by Slack at {where}", status_code=status)
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        detail = _scrub(str(exc), secrets)[:300]
        if not isinstance(status, int) or status < 300:
            reason = f"{method} at {where} gave no Slack answer: {detail}"
            return retry(None, reason, status_code=status)
        return classify_status(status, reason=f"Slack answered {status} at {where}: {detail}")
    error = str(data["error"])
    hint = _hint(error, ctx, data, method)
    reason = _scrub(f"Slack {method} failed: {error}{_detail(data)}; {hint} ({where})", secrets)
    # An undocumented error code with a 5xx is Slack having trouble, not our request.
    undocumented = hint.startswith("see https://")
    if error in RETRY_ERRORS or (isinstance(status, int) and status >= 500 and undocumented):
        return retry(after, reason, status_code=status)
    return fail(reason, status_code=status)


def _hint(error: str, ctx: DeliveryContext, data: Mapping[str, Any], method: str) -> str:
    if error in _AUTH_ERRORS:
        secret = ctx.destination.options.get("bot_token") if ctx.destination else None
        origin = getattr(secret, "origin", "") or "its secret reference"
        return f"Slack rejected the bot token; check the destination's bot_token ({origin})"
    if error == "missing_scope":
        return (
            f"the bot token lacks the scope {data.get('needed', 'chat:write')}; add it "
            "under OAuth & Permissions and reinstall the app"
        )
    if error in _PERMISSION_ERRORS:
        return "the workspace does not let this app do that here"
    if error in _CONTENT_ERRORS:
        return "Slack refused the message; fix the rule's text or blocks"
    if error in RETRY_ERRORS:
        return "a transient problem at Slack"
    return _HINTS.get(error, f"see https://docs.slack.dev/reference/methods/{method}#errors")


def _detail(data: Mapping[str, Any]) -> str:
    """Slack's own explanation: `errors` (invalid_blocks) or `response_metadata.messages`."""
    meta = data.get("response_metadata")
    messages = data.get("errors") or (meta.get("messages") if isinstance(meta, Mapping) else None)
    if not isinstance(messages, list) or not messages:
        return ""
    return " (" + "; ".join(str(m) for m in messages[:3])[:300] + ")"


def classify_webhook(
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    ctx: DeliveryContext,
    where: str,
    secrets: tuple[str, ...],
) -> SendResult:
    """Map an incoming webhook's answer: 200 `ok`; the error is a plain-text code."""
    if 200 <= status < 300:
        return ok(None, status_code=status)
    text = _scrub(body.strip(), secrets)[:200] or "(empty body)"
    if status == 429:
        after = parse_retry_after(headers.get("Retry-After"), now=ctx.now)
        return retry(after, f"rate limited by Slack at {where}: {text}", status_code=429)
    hint = _WEBHOOK_HINTS.get(text, "")
    if not hint and 400 <= status < 500:
        hint = "Slack refused the message; fix the rule's text or blocks"
    reason = f"Slack answered {status} {text} for {where}" + (f"; {hint}" if hint else "")
    return classify_status(status, reason=reason)
