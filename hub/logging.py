"""Log setup with secret masking: every configured secret value is replaced before output."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from connectors.base import replace_lone_surrogates
from hub.secrets import MASK

#: Token shapes masked even when they are not in the config (e.g. echoed by a provider).
_TOKEN_PATTERNS = re.compile(
    # Discord webhook and interaction follow-up tokens in URLs (/api/v10/webhooks/…): the
    # whole token, whatever it holds (`:`, `=`, `+`, `/`, %-escapes), up to /messages/….
    r"(/api/(?:v\d+/)?webhooks/\d+/)(?:(?!/messages(?:[/?#\s\"'<>]|$))[^?#\s\"'<>\\])+"
    # Slack response_url and incoming-webhook URLs: the last path segment is the secret
    r"|(hooks\.slack\.com/[a-z]+/[A-Za-z0-9/_-]*/)[A-Za-z0-9]{16,}"
    r"|(?i:(bearer|token|secret)[ =:]+)[A-Za-z0-9_.~+/-]{12,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|secret_[A-Za-z0-9]{20,}|ntn_[A-Za-z0-9]{20,}"  # Notion integration tokens
)


def mask_text(text: str, secrets: Iterable[str], *, shapes: bool = True) -> str:
    """Replace every known secret and token-shaped string in `text`.

    `shapes=False` keeps token-shaped strings: only for text the admin must read, such as
    Notion's verification token before it is configured (it looks like a Notion token).
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    if not shapes:
        return text
    return _TOKEN_PATTERNS.sub(
        lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + MASK, text
    )


class Revealed(str):
    """Text the admin must read whole (a verification token to paste into Notion): the
    configured secrets are still masked in it, token-shaped strings are not."""

    __slots__ = ()


class Masker:
    """Masks the configured secrets (and token-shaped strings) in any JSON value.

    Lone surrogates (legal JSON escapes, kept in rows stored before sources replaced them)
    become U+FFFD too: what it returns always encodes as UTF-8, in a response or a page.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)

    def __call__(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_SHOWN_DEPTH:  # legal JSON may nest past what the stack allows
            return NESTED_TOO_DEEP
        if isinstance(value, Revealed):
            return Revealed(mask_text(replace_lone_surrogates(value), self._secrets, shapes=False))
        if isinstance(value, str):
            return mask_text(replace_lone_surrogates(value), self._secrets)
        if isinstance(value, dict):
            if value.get("secret") is True:
                return {self._key(k): self._secret_part(str(k), v) for k, v in value.items()}
            return {self._key(k): self(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v, depth + 1) for v in value]
        return value

    def _key(self, key: object) -> str:
        return str(replace_lone_surrogates(str(key)))

    def _secret_part(self, key: str, value: Any) -> Any:
        """In a value its source marked `secret: true` (a chat command's follow-up URL),
        every string is masked but the documented metadata."""
        if key in _SECRET_METADATA or not isinstance(value, str):
            return self(value)
        return MASK


#: How deep the Masker follows nested JSON; deeper values are replaced by a notice.
MAX_SHOWN_DEPTH = 100
NESTED_TOO_DEEP = f"(nested deeper than {MAX_SHOWN_DEPTH} levels: not shown)"

#: Keys of a `secret: true` value that are not secret: which kind, whose, until when.
_SECRET_METADATA = frozenset({"kind", "expires_at", "application_id"})


#: `log.warning(..., extra=REVEAL)`: the record carries a token the admin must copy.
REVEAL = {"reveal": True}


#: Ids of the work being done (event_id, delivery_id), added to every record logged
#: meanwhile: a thread's actor and an asyncio task each see their own.
_bound: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "switchboard_log_ids", default=None
)


@contextlib.contextmanager
def bound(**ids: str) -> Iterator[None]:
    """Tag the log records of the block with these ids (e.g. bound(event_id=...))."""
    token = _bound.set({**(_bound.get() or {}), **ids})
    try:
        yield
    finally:
        _bound.reset(token)


def bind(**ids: str) -> None:
    """Tag the rest of the current task's (or thread's) records; tasks copy their context."""
    _bound.set({**(_bound.get() or {}), **ids})


class BoundIdsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.ids = _bound.get() or {}
        return True


class MaskingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = getattr(record, "ids", None)
        if ids:
            text += " [" + " ".join(f"{k}={v}" for k, v in sorted(ids.items())) + "]"
        return mask_text(text, self._secrets, shapes=not getattr(record, "reveal", False))


class JsonMaskingFormatter(logging.Formatter):
    """One JSON object per line, for log shippers; secrets masked after rendering."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "ids", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        text = json.dumps(entry, ensure_ascii=False, default=str)
        return mask_text(text, self._secrets, shapes=not getattr(record, "reveal", False))


#: What `serve` hands uvicorn as its log config: uvicorn's loggers get no handlers of their
#: own and pass their records up to the root handler `configure_logging` set, so its
#: "Exception in ASGI application" tracebacks come out in the hub's format (one JSON object
#: a line in json mode) and masked, like every other record. Its default config would
#: print them to stderr with a formatter of its own, around the masking.
UVICORN_LOG_CONFIG: dict[str, object] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        name: {"handlers": [], "propagate": True}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    },
}


def configure_logging(level: str, secrets: Iterable[str], fmt: str = "console") -> None:
    """`fmt` "console" for people, "json" for log shippers (SWITCHBOARD_LOG_FORMAT)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(BoundIdsFilter())
    if fmt == "json":
        handler.setFormatter(JsonMaskingFormatter(secrets))
    else:
        handler.setFormatter(
            MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("dramatiq").setLevel("WARNING")
    # httpx logs every request at INFO: one formatted, masked line per send was 6% of a
    # worker's CPU (docs/benchmarks.md); each attempt is recorded in the store anyway.
    logging.getLogger("httpx").setLevel("WARNING")
