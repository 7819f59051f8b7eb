"""The connector plugin API: what a destination module implements and receives.

A connector only builds and sends one request and says what the answer meant
(`ok`, `retry`, `fail`). Retries, backoff, rate limits and the dead-letter queue
belong to the delivery engine, so a connector never sleeps, loops or writes state.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import httpx

__all__ = [
    "SECRET_REF_SCHEMA",
    "CliCommand",
    "CliTools",
    "Connector",
    "ConnectorEnv",
    "DeliveryContext",
    "Destination",
    "RenderedAction",
    "SecretValue",
    "SendResult",
    "classify_status",
    "fail",
    "ok",
    "parse_duration",
    "parse_retry_after",
    "redact_url",
    "replace_lone_surrogates",
    "retry",
    "secret_option",
    "shared_budget_key",
]

#: JSON Schema for a secret given by reference in a destination's settings.
SECRET_REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "env": {"type": "string"},
        "file": {"type": "string"},
        "optional": {"type": "boolean"},
    },
    "oneOf": [{"required": ["env"]}, {"required": ["file"]}],
}


class SecretValue(Protocol):
    """A secret from the config; prints masked, `reveal()` reads it."""

    def reveal(self) -> str: ...


def secret_option(destination: Destination | None, key: str) -> str | None:
    """The revealed secret `key` of a destination, or None when it is not set."""
    if destination is None:
        return None
    value = destination.options.get(key)
    return value.reveal() if value is not None and hasattr(value, "reveal") else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    """A named destination from switchboard.yaml; secret options are `hub.secrets.Secret`."""

    name: str
    connector: str
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Why the destination cannot be used (e.g. an optional secret is not set), else None.
    disabled_reason: str | None = None


#: A UTF-16 surrogate code point: never text on its own, and UTF-8 cannot encode it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(value: Any) -> Any:
    """`value` (a str, or JSON made of dicts and lists) with every lone surrogate as U+FFFD.

    JSON may legally escape half of a UTF-16 pair (`"\\ud83d"`, what JavaScript writes
    when it cuts an emoji in half), and Python then holds a str that no UTF-8 encoder
    (a JSON response, a file, an HTTP body) accepts. A split pair is joined again.
    """
    if isinstance(value, str):
        if value.isascii() or not _SURROGATE.search(value):
            return value
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, Mapping):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [replace_lone_surrogates(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedAction:
    """One action of a matched rule with every template already rendered."""

    connector: str
    operation: str | None
    destination: str | None
    params: Mapping[str, Any]

    def __post_init__(self) -> None:
        # Rendered from event text, which may hold a lone surrogate: every connector
        # then encodes (JSON, a file, email) what it is given without an encoding error.
        object.__setattr__(self, "params", replace_lone_surrogates(self.params))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryContext:
    """What the engine tells a connector about the delivery being sent."""

    #: The hub's id of this delivery row (not the provider's id of the inbound request).
    delivery_id: str
    event_id: str
    rule_id: str
    idempotency_key: str
    attempt: int
    destination: Destination | None
    #: The engine's clock reading at send time (for HTTP-date Retry-After headers).
    now: datetime
    #: Provider reference stored by an earlier successful send (e.g. a message id).
    previous_ref: str | None = None
    #: The event's entity, e.g. "notion/workspace/1f2e|task|5c6a…" (source|kind|id).
    entity_key: str | None = None
    #: Latest provider refs of earlier delivered sends by this connector to this
    #: destination for the same entity, by operation ("" when the action has none): lets a
    #: connector edit its earlier message, reply in its thread, stop what it started.
    entity_refs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider's answer meant; the engine decides what happens next."""

    outcome: Literal["ok", "retry", "fail"]
    reason: str = ""
    #: ok: provider reference (message id ...); kept to edit instead of duplicate later.
    ref: str | None = None
    #: retry: seconds the provider asked us to wait, or None for engine backoff.
    after: float | None = None
    status_code: int | None = None
    #: The provider says this destination's budget is spent for this long (e.g. Discord's
    #: X-RateLimit-Remaining: 0 with X-RateLimit-Reset-After): every worker holds off.
    pause_s: float | None = None

    def __post_init__(self) -> None:
        # A reason or ref may quote a provider's answer; the store must be able to save it.
        object.__setattr__(self, "reason", replace_lone_surrogates(self.reason))
        object.__setattr__(self, "ref", replace_lone_surrogates(self.ref))


def ok(
    ref: str | None = None, *, status_code: int | None = None, pause_s: float | None = None
) -> SendResult:
    return SendResult("ok", ref=ref, status_code=status_code, pause_s=pause_s)


def retry(
    after: float | None = None, reason: str = "", *, status_code: int | None = None
) -> SendResult:
    return SendResult("retry", reason=reason, after=after, status_code=status_code)


def fail(reason: str, *, status_code: int | None = None) -> SendResult:
    return SendResult("fail", reason=reason, status_code=status_code)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorEnv:
    """What every connector is built with; one shared HTTP client per worker."""

    http: httpx.AsyncClient
    #: Directory of switchboard.yaml, for relative paths in destination settings.
    base_dir: Path


@runtime_checkable
class Connector(Protocol):
    """A destination plugin, registered under the `switchboard.connectors` entry point."""

    name: ClassVar[str]
    #: JSON Schema of the action parameters a rule may give.
    params_schema: ClassVar[dict[str, Any]]
    #: JSON Schema of a destination's settings in switchboard.yaml.
    destination_schema: ClassVar[dict[str, Any]]
    #: Parameter that names the destination (e.g. "channel"), or None if it takes none.
    destination_param: ClassVar[str | None]

    #: Default rate limits, `(count, per seconds)` pairs, for destinations that set none.
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = ()
    #: `(action param, person attribute)` for rules' `to:` (e.g. `("user", "slack")`);
    #: None: the connector cannot send to a person.
    person_address: ClassVar[tuple[str, str] | None] = None

    def __init__(self, env: ConnectorEnv) -> None: ...

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult: ...

    def budget_key(self, destination: Destination | None) -> str | None:
        """The rate-limit budget several destinations share (`shared_budget_key`);
        None (the default): each destination has its own."""
        return None

    @classmethod
    def cli_commands(cls) -> Sequence[CliCommand]:
        """`switchboard` commands this plugin adds (provider helpers); none by default."""
        return ()


class CliTools(Protocol):
    """What the CLI gives a plugin's commands: the config loader and argument types."""

    def settings(self, args: argparse.Namespace, *, require_secrets: bool = True) -> Any:
        """`(Settings, Plugins)` from `--config`; raises ConfigError saying what to fix."""
        ...

    def existing_path(self, text: str) -> Path:
        """argparse type for a file the command reads: a typo is a usage error."""
        ...

    def duration(self, text: str) -> str:
        """argparse type for a duration (30s, 5m, 7d)."""
        ...

    def http(self) -> httpx.Client:
        """A synchronous HTTP client with the hub's User-Agent and timeout (close it)."""
        ...

    def with_store(self, settings: Any, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """`work(ctx)` run to its end with an upkeep context (the store, an HTTP client)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CliCommand:
    """A `switchboard <name> ...` command a plugin contributes (`cli_commands()`).

    `build` adds the command's arguments or sub-commands to its parser and sets
    `run=<function(args) -> exit status>` with `set_defaults` (`blocks=True` for commands
    that wait, e.g. for a browser). Errors are raised as hub errors, printed in one line.
    """

    name: str
    help: str
    build: Callable[[argparse.ArgumentParser, CliTools], None]


def classify_status(status_code: int, *, reason: str, after: float | None = None) -> SendResult:
    """Shared mapping of HTTP status to outcome: 2xx ok, 408/429/5xx retry, other 4xx fail."""
    if 200 <= status_code < 300:
        return ok(status_code=status_code)
    if status_code in (408, 425, 429) or status_code >= 500:
        return retry(after, reason, status_code=status_code)
    return fail(reason, status_code=status_code)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # float() also reads "nan", "inf" and "1e999": none of them is a wait.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=now.tzinfo)
    return max(0.0, (when - now).total_seconds())


_URL_SECRET_PARTS = re.compile(
    r"(/webhooks/\d+/)[^/?#\s]+|([?&](?:token|key|sig|signature)=)[^&#\s]+"
)


def redact_url(url: str | httpx.URL) -> str:
    """A URL safe to show: webhook tokens, userinfo and signing query values replaced."""
    parsed = httpx.URL(str(url))
    if parsed.userinfo:
        parsed = parsed.copy_with(username="redacted", password=None)
    return _URL_SECRET_PARTS.sub(lambda m: (m.group(1) or m.group(2)) + "REDACTED", str(parsed))


def response_json(response: httpx.Response) -> Any:
    """The response's JSON, or None when its body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def response_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when its body is not one (an error page, a list)."""
    data = response_json(response)
    return data if isinstance(data, dict) else {}


def shared_budget_key(service: str, credential: str) -> str:
    """The rate-limit budget of one provider credential (e.g. a Notion integration token),
    named without revealing it, so every reader and writer using it draws on one budget."""
    return f"{service}:{hashlib.sha256(credential.encode()).hexdigest()[:16]}"


#: One `<number><unit>` part of a duration; parts add up (`1h30m`, `1d12h`).
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_DURATION_HINT = "write seconds (90) or a number with a unit: 90s, 5m, 2h, 1d, 1w, 1h30m"


def parse_duration(value: object) -> timedelta:
    """The project's one duration grammar, for config, rules, the CLI and action params.

    A non-negative number (or digits) is seconds; text is one or more `<number><unit>`
    parts with units ms, s, m, h, d, w, added up (`1h30m`, `1.5h`); case and spaces
    are ignored. Raises ValueError naming the value and how to write one.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if _SECONDS.fullmatch(text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for part in _DURATION_PART.finditer(text):
                if part.start() != pos:
                    break
                seconds += float(part.group(1)) * _DURATION_UNIT_S[part.group(2)]
                pos = part.end()
            if not text or pos != len(text):
                raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
    else:
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long for a duration; {_DURATION_HINT}") from None


_TRUE = frozenset(("true", "yes", "1"))
_FALSE = frozenset(("false", "no", "0"))


def parse_boolean(value: object, *, blank_is_false: bool = False, name: str = "") -> bool:
    """An action param meaning yes or no: a bool, or true/yes/1 and false/no/0 in any case.

    Params are often rendered templates, so text is the usual form. `blank_is_false`: a
    param left out or a template that rendered nothing means no (an optional flag).
    Raises ValueError naming the param (`name`) and the value.
    """
    if isinstance(value, bool):
        return value
    if value is None and blank_is_false:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or (blank_is_false and not text):
        return False
    raise ValueError(f"{name + ' ' if name else ''}{value!r} is not true or false")
