"""Webhook connector: send a JSON (or any) body to a URL, signed per Standard Webhooks 1.0.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
The signature is `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")),
where the key is the base64 text after `whsec_`; `webhook-signature` carries one entry per
secret, space-separated, so a receiver keeps verifying while a secret is rotated.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from connectors._netguard import (
    BlockedTarget,
    InvalidTarget,
    Pinned,
    Resolver,
    UnresolvedHost,
    pin,
    system_resolver,
    usable_url,
)
from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    redact_url,
    retry,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker of a secret, not one
DEFAULT_TIMEOUT_S = 15.0  # the spec recommends 15-30 s so receivers have time to answer
METHODS = ("POST", "PUT", "PATCH")
#: Headers the connector owns: a rule overriding them would break the signature or HTTP.
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "host",
        "authorization",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_PATTERN = (
    "^(?:[Ww][Ee][Bb][Hh][Oo][Oo][Kk]-.*|[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Tt][Yy][Pp][Ee]"
    "|[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]|[Hh][Oo][Ss][Tt]"
    "|[Aa][Uu][Tt][Hh][Oo][Rr][Ii][Zz][Aa][Tt][Ii][Oo][Nn])$"
)

_headers_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "propertyNames": {"pattern": _HEADER_NAME.pattern, "not": {"pattern": _RESERVED_PATTERN}},
}

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to", "body"],
    "properties": {
        "to": {
            "type": "string",
            "description": "Name of a webhook destination in switchboard.yaml.",
            "examples": ["orders-service"],
        },
        "body": {
            "type": ["object", "array", "string"],
            "description": (
                "What to send. An object or list is sent as compact JSON; a string is sent "
                "byte for byte (`{{ event | tojson }}` sends the whole event)."
            ),
            "examples": [
                "{{ event | tojson }}",
                {"type": "{{ event.type }}", "data": {"title": "{{ event.data.entity.title }}"}},
            ],
        },
        "content_type": {
            "type": "string",
            "description": (
                "Content-Type of the body (default application/json); a JSON type makes a "
                "string body be checked as JSON before sending."
            ),
            "examples": ["application/json", "text/plain; charset=utf-8"],
        },
        "headers": {
            **_headers_schema,
            "description": (
                "Extra headers for this action, over the destination's; webhook-*, "
                "Content-Type, Content-Length, Host and Authorization are set by Switchboard."
            ),
            "examples": [{"X-Event-Type": "{{ event.type }}"}],
        },
        "method": {
            "type": "string",
            "enum": list(METHODS),
            "description": "HTTP method; overrides the destination's (default POST).",
            "examples": ["PUT"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {
            "oneOf": [{"type": "string"}, SECRET_REF_SCHEMA],
            "description": (
                "Receiver URL; give it as a secret reference when the URL itself grants access."
            ),
            "examples": ["https://hooks.example.com/switchboard", {"env": "ORDERS_HOOK_URL"}],
        },
        "secret": {
            **SECRET_REF_SCHEMA,
            "description": (
                "Signing secret, `whsec_<base64>` (the prefix is optional). Without it no "
                "webhook-signature header is sent."
            ),
            "examples": [{"env": "ORDERS_HOOK_SECRET"}],
        },
        "previous_secret": {
            **SECRET_REF_SCHEMA,
            "description": "The secret being rotated out; requests are signed with both.",
            "examples": [{"env": "ORDERS_HOOK_SECRET_OLD"}],
        },
        "authorization": {
            **SECRET_REF_SCHEMA,
            "description": "Value of the Authorization header, e.g. `Bearer <token>`.",
            "examples": [{"env": "ORDERS_HOOK_AUTH"}],
        },
        "headers": {
            **_headers_schema,
            "description": "Headers sent with every request to this destination.",
            "examples": [{"X-Source": "switchboard"}],
        },
        "method": {
            "type": "string",
            "enum": list(METHODS),
            "description": "HTTP method (default POST).",
            "examples": ["POST"],
        },
        "timeout_s": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 30,
            "description": "Seconds to wait for the receiver's answer (default 15).",
            "examples": [15],
        },
        "allow_private_network": {
            "type": "boolean",
            "default": False,
            "description": (
                "Allow a url whose host is loopback, link-local or a private network "
                "(an on-prem receiver). Off by default: such targets are refused, so a rule "
                "cannot reach the hub's own network (SSRF)."
            ),
            "examples": [True],
        },
    },
}


@dataclass(frozen=True, slots=True)
class Target:
    """The receiver URL and whether it must be kept out of messages (it came from a secret)."""

    url: str
    is_secret: bool

    def describe(self) -> str:
        """The URL as error messages show it: a secret URL is reduced to its host."""
        if not self.is_secret:
            try:
                return redact_url(self.url)
            except (httpx.InvalidURL, ValueError):  # the SSRF guard says what is wrong
                return "the destination's url"
        try:
            parsed = httpx.URL(self.url)
            host = parsed.host
        except (httpx.InvalidURL, ValueError):
            return "the destination's secret url"
        return f"{parsed.scheme}://{host}/REDACTED" if host else "the secret url"

    def scrub(self, text: str) -> str:
        """`text` with the URL's secret parts replaced; proxies may echo the request line."""
        if not self.is_secret:
            return text
        parts = {self.url}
        try:
            parsed = httpx.URL(self.url)
            parts |= {
                parsed.raw_path.decode("ascii", "replace"),
                parsed.path,
                parsed.query.decode(),
            }
        except (httpx.InvalidURL, ValueError):
            pass
        for part in sorted((p for p in parts if len(p) > 1), key=len, reverse=True):
            text = text.replace(part, "REDACTED")
        return text


class WebhookConnector(Connector):
    """Sends the action's `body` with Standard Webhooks headers; never follows redirects."""

    name: ClassVar[str] = "webhook"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "to"

    def __init__(self, env: ConnectorEnv, *, resolver: Resolver = system_resolver) -> None:
        self._http = env.http
        #: How hosts are resolved for the SSRF check; tests pass a fake instead of DNS.
        self._resolver = resolver

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        dest = ctx.destination
        if dest is None:
            return fail("webhook action has no destination ('to')")
        target = _target(dest)
        if target is None:
            return fail(f"webhook destination '{dest.name}' has no url")
        try:
            content, content_type = encode_body(action.params)
            keys = signing_keys(dest)
            headers = _headers(dest, action.params)
        except ValueError as exc:
            return fail(f"cannot build the webhook for '{dest.name}': {exc}")
        msg_id = ctx.idempotency_key
        timestamp = int(ctx.now.timestamp())
        headers |= {
            "Content-Type": content_type,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
        if keys:
            headers["webhook-signature"] = sign(msg_id, timestamp, content, keys)
        method = str(action.params.get("method") or dest.options.get("method") or "POST")
        timeout_s = float(dest.options.get("timeout_s", DEFAULT_TIMEOUT_S))
        where = target.describe()
        checked = await self._check_target(dest, target)
        if isinstance(checked, SendResult):
            return checked
        url, extensions = target.url, {}
        if checked is not None:  # sent to the address that was checked, resolved once
            url = checked.url
            headers["Host"] = checked.host_header
            if checked.sni_hostname:
                extensions["sni_hostname"] = checked.sni_hostname
        try:
            response = await self._http.request(
                method,
                url,
                content=content,
                headers=headers,
                timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
                follow_redirects=False,
                extensions=extensions,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # Retrying cannot fix the URL, and its text may be the secret: name only the problem.
            return fail(
                f"webhook url of '{dest.name}' is not a usable http(s) URL "
                f"({type(exc).__name__}); check the destination"
            )
        except httpx.LocalProtocolError as exc:
            return fail(f"webhook request to {where} is malformed: {type(exc).__name__}")
        except httpx.TimeoutException:
            return retry(None, f"no answer from {where} within {timeout_s:g}s")
        except httpx.TransportError as exc:
            return retry(None, f"could not reach {where}: {type(exc).__name__}")
        return classify_webhook(response, ctx, target, credentials=_credentials(dest))

    async def _check_target(self, dest: Destination, target: Target) -> SendResult | Pinned | None:
        """The SSRF guard: where to send (None: the url as it is), or the result to return."""
        try:
            if dest.options.get("allow_private_network", False):
                usable_url(target.url)
                return None
            # getaddrinfo blocks; off the event loop it cannot stall other deliveries.
            return await asyncio.to_thread(pin, target.url, resolver=self._resolver)
        except BlockedTarget as exc:
            # The host and address are shown, never the url's path or query (maybe secret).
            return fail(
                f"webhook destination '{dest.name}' was not sent to: {exc}; set "
                "allow_private_network: true on the destination if this receiver is meant "
                "to be on a private network"
            )
        except InvalidTarget as exc:  # no retry can fix the url; its path is never quoted
            return fail(f"webhook url of '{dest.name}' cannot be used: {exc}; fix the destination")
        except UnresolvedHost as exc:
            return retry(None, f"webhook destination '{dest.name}': {exc}")


def _target(dest: Destination) -> Target | None:
    value = dest.options.get("url")
    if value is None:
        return None
    if hasattr(value, "reveal"):
        return Target(str(value.reveal()), is_secret=True)
    return Target(str(value), is_secret=False)


def encode_body(params: Mapping[str, Any]) -> tuple[bytes, str]:
    """The exact bytes to sign and send, and their Content-Type."""
    body = params.get("body")
    content_type = str(params.get("content_type") or "application/json")
    is_json = _is_json(content_type)
    if isinstance(body, str):
        if is_json:
            try:
                json.loads(body)
            except ValueError as exc:
                raise ValueError(
                    f"body is not valid JSON ({exc.args[0] if exc.args else exc}); "
                    "render it with `| tojson`, or set content_type for non-JSON text"
                ) from None
        return body.encode("utf-8"), content_type
    if body is None:
        raise ValueError("the action has no body")
    if not is_json:
        raise ValueError(
            f"an object body is sent as JSON, not {content_type}; give a string body instead"
        )
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"body cannot be sent as JSON: {exc}") from None
    return text.encode("utf-8"), content_type


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def signing_keys(dest: Destination) -> list[bytes]:
    """HMAC keys from `secret` then `previous_secret`; raises ValueError for a malformed one."""
    keys = []
    for option in ("secret", "previous_secret"):
        value = dest.options.get(option)
        if value is None or not hasattr(value, "reveal"):
            continue
        text = str(value.reveal()).strip().removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            # Never quote the value: it is the secret.
            raise ValueError(f"{option} is not `whsec_` followed by base64") from None
        if not key:
            raise ValueError(f"{option} is empty")
        keys.append(key)
    return keys


def sign(msg_id: str, timestamp: int, body: bytes, keys: list[bytes]) -> str:
    """The `webhook-signature` value: `v1,<base64>` per key, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
        for key in keys
    )


def _headers(dest: Destination, params: Mapping[str, Any]) -> dict[str, str]:
    """Destination headers, then the action's, then Authorization; reserved names refused."""
    merged: dict[str, str] = {}
    for source in (dest.options.get("headers") or {}, params.get("headers") or {}):
        for name, value in source.items():
            text = str(value)
            if not _HEADER_NAME.match(str(name)) or str(name).lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} cannot be set by a rule or destination")
            if "\r" in text or "\n" in text:
                raise ValueError(f"header {name!r} contains a line break")
            merged[str(name)] = text
    auth = dest.options.get("authorization")
    if auth is not None and hasattr(auth, "reveal"):
        merged["Authorization"] = str(auth.reveal())
    return merged


def _credentials(dest: Destination) -> list[str]:
    """Secret option values a receiver might echo back (Authorization, signing secrets)."""
    values = []
    for option in ("authorization", "secret", "previous_secret"):
        value = dest.options.get(option)
        if value is not None and hasattr(value, "reveal"):
            text = str(value.reveal()).strip()
            values += [text, text.removeprefix(SECRET_PREFIX)]
            if option == "authorization" and " " in text:
                values.append(text.split(" ", 1)[1].strip())  # the token after "Bearer "
    return [v for v in values if len(v) >= 4]


def classify_webhook(
    response: httpx.Response,
    ctx: DeliveryContext,
    target: Target,
    *,
    credentials: list[str] | None = None,
) -> SendResult:
    """Map the receiver's answer to ok / retry(after) / fail, per the spec's status advice.

    The receiver's text goes into the reason, so an echoed secret url or credential is
    replaced first: reasons are stored and shown on the dashboard.
    """
    status = response.status_code
    where = target.describe()
    if response.is_success:
        return ok(status_code=status)
    if response.is_redirect:
        moved = response.headers.get("location")
        to = f" to {redact_url(moved)}" if moved and not target.is_secret else ""
        return fail(
            f"{where} answered {status} (redirect{to}); webhooks are not redirected: "
            "set the destination url to the final address",
            status_code=status,
        )
    detail = target.scrub(_detail(response))
    for value in sorted(credentials or [], key=len, reverse=True):
        detail = detail.replace(value, "REDACTED")
    if status == 410:
        return fail(
            f"{where} answered 410 Gone: the receiver no longer wants these webhooks; "
            f"remove or fix the destination ({detail})",
            status_code=status,
        )
    return classify_status(
        status,
        reason=f"{where} answered {status}: {detail}",
        after=parse_retry_after(response.headers.get("retry-after"), now=ctx.now),
    )


def _detail(response: httpx.Response) -> str:
    text = response.text.strip()
    return text[:200] if text else response.reason_phrase
