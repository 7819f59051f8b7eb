"""The one tree of Switchboard's own exceptions.

    SwitchboardError
    ├── ConfigError            file, line, col, message, hint
    │   └── RuleError
    ├── RequestRejected        status, code (answered as JSON, never a traceback)
    │   ├── SignatureError     401
    │   ├── MalformedPayload   400
    │   ├── PayloadTooLarge    413
    │   └── UnknownSource      404
    ├── PluginError
    ├── UsageError             the command line asks for something impossible (exit 2)
    ├── QueryFailed            a rule's query step cannot succeed as written
    └── StoreError

Errors from third-party libraries are caught in the one module that touches the
library and re-raised as one of these, `from` the original.
"""

from __future__ import annotations

from dataclasses import dataclass


class SwitchboardError(Exception):
    """Base of every error Switchboard raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a file a problem is; line and col are 1-based, 0 when unknown."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class ConfigError(SwitchboardError):
    """A configuration or rule file is wrong; the message says where and what to write."""

    def __init__(self, message: str, *, location: Location | None = None, hint: str = "") -> None:
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}{self.message}{hint}"


class ConfigErrors(ConfigError):
    """Several configuration errors found in one pass, reported together, sorted by location."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(
            errors,
            key=lambda e: (
                e.location.file if e.location else "",
                e.location.line if e.location else 0,
                e.location.col if e.location else 0,
            ),
        )
        super().__init__("\n".join(e.render() for e in self.errors))

    def render(self) -> str:
        return "\n".join(e.render() for e in getattr(self, "errors", []))


class UsageError(SwitchboardError):
    """A command's arguments cannot work; the message says what to type instead (exit 2)."""


class RuleError(ConfigError):
    """A rule file is wrong."""


class RequestRejected(SwitchboardError):
    """An inbound request is refused; `status` and `code` go into the JSON answer."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.message = message
        if code is not None:
            self.code = code
        super().__init__(message)


class SignatureError(RequestRejected):
    """The request's signature is missing or wrong."""

    status = 401
    code = "bad_signature"


class MalformedPayload(RequestRejected):
    """The body is not what the source sends (bad JSON, missing headers)."""

    status = 400
    code = "malformed_payload"


class PayloadTooLarge(RequestRejected):
    """The body is over the configured size limit."""

    status = 413
    code = "payload_too_large"


class UnknownSource(RequestRejected):
    """No source of that name is configured."""

    status = 404
    code = "unknown_source"


class PluginError(SwitchboardError):
    """A connector or source plugin is broken (duplicate name, invalid schema)."""


class StoreError(SwitchboardError):
    """The store could not be read or written."""
