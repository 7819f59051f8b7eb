"""Small helpers shared by sources: signatures and JSON bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from connectors.base import replace_lone_surrogates
from hub.errors import MalformedPayload, SignatureError


def require_header(headers: Mapping[str, str], name: str, *, error: type[Exception]) -> str:
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise error(f"missing {name} header")
    return value


def check_hmac_sha256(body: bytes, key: bytes, presented: str, *, header: str) -> None:
    """Constant-time check of a `sha256=<hex>` signature over the raw body."""
    scheme, _, digest = presented.partition("=")
    if scheme != "sha256" or not digest:
        raise SignatureError(f"{header} must look like sha256=<hex digest>")
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    digest = digest.strip().lower()
    # Ingress decodes header bytes as latin-1, and compare_digest raises on non-ASCII text.
    if not digest.isascii() or not hmac.compare_digest(expected, digest):
        raise SignatureError(f"{header} does not match the body; check the shared secret")


def check_fresh(timestamp: str, now: datetime, *, header: str, window: timedelta) -> None:
    """Refuse a signed Unix-seconds timestamp further than `window` from our clock (a replay)."""
    # Twelve digits reach past the year 30000: longer is garbage, and would overflow.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise SignatureError(f"{header} must be Unix seconds", code="stale_request")
    skew = abs(now - datetime.fromtimestamp(int(timestamp), UTC))
    if skew > window:
        minutes = int(window.total_seconds() // 60)
        raise SignatureError(
            f"{header} is {int(skew.total_seconds())} s away from our clock, outside "
            f"the {minutes}-minute replay window; check the server's clock",
            code="stale_request",
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a float (1e999) is refused, not infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


#: A JSON escape of a UTF-16 surrogate (`\\ud800`-`\\udfff`); a pair decodes to one
#: character, half of one (JavaScript cutting an emoji) to a str UTF-8 cannot encode.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Strict JSON (no NaN/Infinity, no overflowing numbers) whose top level is an object.

    A lone surrogate escape is legal JSON and is accepted; it is read as U+FFFD, so no
    event, stored row or rendered message ever holds text that cannot be encoded.

    orjson parses first (the stdlib parser with its checks was 5% of a worker's CPU:
    20 vs 54 us for a 14 KB GitHub body); whatever it refuses gets the stdlib's verdict
    and message, as in check_json_object. One value differs: an integer beyond 64 bits
    (no provider sends one) is read as a float, as orjson reads it.
    """
    if not _deep(body):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            if not isinstance(parsed, dict):
                raise MalformedPayload("body must be a JSON object", code="bad_json")
            return parsed
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise MalformedPayload("body is not valid UTF-8", code="bad_encoding") from exc
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"body is not valid JSON: {exc}", code="bad_json") from exc
    if not isinstance(value, dict):
        raise MalformedPayload("body must be a JSON object", code="bad_json")
    if _SURROGATE_ESCAPE.search(body):
        return dict(replace_lone_surrogates(value))
    return value


#: Above this many opening brackets the stdlib parser may hit Python's recursion limit
#: (orjson allows 1,024 levels): such bodies get the stdlib's verdict, the one normalize
#: will reach.
_DEEP = 512
#: Every byte but the opening brackets: `translate` deleting them leaves only the brackets,
#: one pass over the body (5 µs for 14 KB) where two `count` calls took 10.
_NOT_OPENING = bytes(c for c in range(256) if c not in b"[{")


def _deep(body: bytes) -> bool:
    """More opening brackets than _DEEP (a cheap bound on the nesting depth)."""
    return len(body.translate(None, _NOT_OPENING)) > _DEEP


def check_json_object(body: bytes) -> None:
    """Refuse exactly what `parse_json_object` refuses, for a caller that needs no value.

    Ingress checks every body it stores; the stdlib parser building objects only to be
    thrown away was a quarter of ingress's own CPU per request. orjson validates in C.
    It refuses some bodies the stdlib takes (lone surrogate escapes, integers beyond 64
    bits that overflow a float) and those get the stdlib's verdict; a test checks that
    both accept the same bodies.
    """
    if _deep(body):
        parse_json_object(body)
        return
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        parse_json_object(body)  # raises with the stdlib's message, or accepts
        return
    if not isinstance(value, dict):
        raise MalformedPayload("body must be a JSON object", code="bad_json")


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp from a payload, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
