"""Email connector: SMTP through aiosmtplib, plain-text and HTML parts from Jinja2 files.

Docs: https://aiosmtplib.readthedocs.io/en/stable/ . Reply codes follow RFC 5321 §4.2.1
(https://www.rfc-editor.org/rfc/rfc5321#section-4.2.1): 4yz is a transient failure
(greylisting, a full mailbox, a busy server) worth retrying, 5yz a permanent one.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from pathlib import Path
from typing import Any, ClassVar, Literal

import aiosmtplib
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment

from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    fail,
    retry,
    secret_option,
)

log = logging.getLogger("switchboard.connectors.email")

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT_S = 30.0
#: Headers the connector sets itself; `headers:` may not override them.
RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "sender",
    "mime-version", "content-type", "content-transfer-encoding",
})  # fmt: skip

_addresses_schema: dict[str, Any] = {
    "type": ["string", "array"],
    "items": {"type": "string"},
}
_TEMPLATE_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["via", "to", "subject"],
    "anyOf": [{"required": ["text"]}, {"required": ["html"]}, {"required": ["template"]}],
    "dependentSchemas": {
        "template": {"not": {"anyOf": [{"required": ["text"]}, {"required": ["html"]}]}}
    },
    "dependentRequired": {"vars": ["template"]},
    "properties": {
        "via": {
            "type": "string",
            "description": "Name of an email destination (an SMTP server) in switchboard.yaml.",
            "examples": ["team-mail"],
        },
        "to": {
            **_addresses_schema,
            "description": "Recipients: one string (commas allowed) or a list.",
            "examples": ["Ada <ada@example.com>, bob@example.com", ["team@example.com"]],
        },
        "cc": {
            **_addresses_schema,
            "description": "Copy recipients, shown in the Cc header.",
            "examples": ["lead@example.com"],
        },
        "bcc": {
            **_addresses_schema,
            "description": "Blind copy recipients: in the SMTP envelope only, never a header.",
            "examples": [["archive@example.com"]],
        },
        "subject": {
            "type": "string",
            "description": "Subject line; line breaks become spaces.",
            "examples": ["Task done: {{ event.data.entity.title }}"],
        },
        "text": {
            "type": "string",
            "description": "Plain-text body.",
            "examples": ["{{ event.data.entity.title }} moved to Done."],
        },
        "html": {
            "type": "string",
            "description": (
                "HTML body. Rule templates do not escape: write `{{ value | e }}` for event "
                "data, or use `template`, whose HTML file is autoescaped."
            ),
            "examples": ["<p><b>{{ event.data.entity.title | e }}</b> is done.</p>"],
        },
        "template": {
            "type": "string",
            "pattern": _TEMPLATE_NAME,
            "description": (
                "Renders <templates_dir>/<name>.txt.j2 and <name>.html.j2 (HTML autoescaped) "
                "with `vars`; at least one of the two files must exist."
            ),
            "examples": ["weekly-report"],
        },
        "vars": {
            "type": "object",
            "description": "Values the template files read as `vars.<name>`.",
            "examples": [{"title": "{{ event.data.entity.title }}"}],
        },
        "reply_to": {
            **_addresses_schema,
            "description": "Where replies go (Reply-To header).",
            "examples": ["ops@example.com"],
        },
        "headers": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z0-9-]+$"},
            "additionalProperties": {"type": "string"},
            "description": "Extra headers; From, To, Subject, Message-ID and the like are refused.",
            "examples": [{"X-Switchboard-Rule": "weekly-report"}],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["host", "from"],
    "dependentRequired": {"username": ["password"], "password": ["username"]},
    "properties": {
        "host": {
            "type": "string",
            "description": "SMTP server host name.",
            "examples": ["smtp.example.com"],
        },
        "port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "description": "Port; defaults to 587 (starttls), 465 (tls) or 25 (none).",
            "examples": [587],
        },
        "security": {
            "enum": ["starttls", "tls", "none"],
            "description": "starttls (default, required), tls (implicit TLS) or none.",
            "examples": ["starttls"],
        },
        "username": {
            "type": "string",
            "description": "Login name for SMTP AUTH.",
            "examples": ["hub@example.com"],
        },
        "password": {
            **SECRET_REF_SCHEMA,
            "description": "Password for SMTP AUTH (a secret reference).",
            "examples": [{"env": "SMTP_PASSWORD"}],
        },
        "from": {
            "type": "string",
            "description": "Sender, the From header and the envelope sender.",
            "examples": ["Switchboard <hub@example.com>"],
        },
        "timeout_s": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Seconds to wait for the server at each step (default 30).",
            "examples": [30],
        },
        "templates_dir": {
            "type": "string",
            "description": "Directory of email templates, relative to switchboard.yaml.",
            "examples": ["templates"],
        },
        "ca_file": {
            "type": "string",
            "description": "PEM CA bundle to trust instead of the system's (private CAs).",
            "examples": ["certs/mail-ca.pem"],
        },
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpServer:
    """A destination's settings, typed once per send."""

    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    sender: str
    username: str | None
    password: str | None
    timeout_s: float
    templates_dir: Path
    ca_file: Path | None

    @property
    def where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"


def smtp_server(destination: Destination, base_dir: Path) -> SmtpServer:
    """Read a schema-checked destination into an `SmtpServer`."""
    options = destination.options
    security = options.get("security", "starttls")
    ca_file = options.get("ca_file")
    return SmtpServer(
        host=str(options["host"]),
        port=int(options.get("port") or DEFAULT_PORTS[security]),
        security=security,
        sender=str(options["from"]),
        username=options.get("username"),
        password=secret_option(destination, "password"),
        timeout_s=float(options.get("timeout_s", DEFAULT_TIMEOUT_S)),
        templates_dir=base_dir / str(options.get("templates_dir", "templates")),
        ca_file=base_dir / str(ca_file) if ca_file else None,
    )


class EmailConnector(Connector):
    """Sends one message per delivery; the Message-ID comes from the idempotency key."""

    name: ClassVar[str] = "email"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "via"
    #: `to: {person: ...}` in a rule sends to the person's email (hub/rules/addressing.py).
    person_address: ClassVar[tuple[str, str]] = ("to", "email")

    def __init__(self, env: ConnectorEnv) -> None:
        self._base_dir = env.base_dir
        # One Jinja2 environment per templates directory, so compiled templates are reused.
        self._environments: dict[Path, ImmutableSandboxedEnvironment] = {}

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        if ctx.destination is None:
            return fail("email action has no destination ('via')")
        server = smtp_server(ctx.destination, self._base_dir)
        if server.username and server.password is None:
            return fail(f"email destination '{ctx.destination.name}' has no password")
        params = action.params
        try:
            text, html = self._bodies(params, server.templates_dir)
            message, recipients = build_message(
                params,
                ctx,
                server,
                text=text,
                html=html,
                thread_ref=ctx.entity_refs.get(action.operation or ""),
            )
            tls_context = _tls_context(server)
        except ValueError as exc:
            return fail(f"cannot build the email: {exc}")
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=parseaddr(server.sender)[1],
                recipients=recipients,
                hostname=server.host,
                port=server.port,
                use_tls=server.security == "tls",
                start_tls=server.security == "starttls",
                tls_context=tls_context,
                username=server.username,
                password=server.password,
                timeout=server.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _redacted(classify_smtp_error(exc, server), server.password)
        except ValueError as exc:
            # aiosmtplib refuses an address it cannot put in the envelope.
            return fail(f"{server.where} cannot be sent this message: {exc}")
        message_id = str(message["Message-ID"])
        if refused:
            # Others got the message: a retry would send them a duplicate, so it is ok.
            detail = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items())
            log.warning("%s refused some recipients of %s: %s", server.where, message_id, detail)
            reason = _redact(f"sent, but {server.where} refused {detail}", server.password)
            return SendResult("ok", reason=reason, ref=message_id, status_code=250)
        return SendResult("ok", ref=message_id, status_code=250)

    def _bodies(
        self, params: Mapping[str, Any], templates_dir: Path
    ) -> tuple[str | None, str | None]:
        """The (text, html) bodies: given inline, or rendered from the template files."""
        if "template" not in params:
            return params.get("text"), params.get("html")
        env = self._environments.get(templates_dir)
        if env is None:
            env = self._environments.setdefault(templates_dir, _template_environment(templates_dir))
        return render_template(env, str(params["template"]), params.get("vars") or {})


def _template_environment(templates_dir: Path) -> ImmutableSandboxedEnvironment:
    # Only the HTML file is escaped: `<` in a plain-text part must stay `<`.
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(templates_dir),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(
    env: ImmutableSandboxedEnvironment, name: str, variables: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """Render `<name>.txt.j2` and `<name>.html.j2` with `vars`; a missing file is skipped."""
    bodies: dict[str, str] = {}
    for kind in ("txt", "html"):
        file_name = f"{name}.{kind}.j2"
        try:
            bodies[kind] = env.get_template(file_name).render(vars=variables)
        except TemplateNotFound:
            continue
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            at = f"{file_name}:{line}" if line else file_name
            raise ValueError(f"template {at} failed: {exc.message or exc}") from exc
        except (TypeError, ArithmeticError) as exc:
            raise ValueError(f"template {file_name} failed: {exc}") from exc
    if not bodies:
        where = env.loader.searchpath[0] if isinstance(env.loader, FileSystemLoader) else "?"
        raise ValueError(f"template '{name}' not found: add {where}/{name}.html.j2 or .txt.j2")
    return bodies.get("txt"), bodies.get("html")


def build_message(
    params: Mapping[str, Any],
    ctx: DeliveryContext,
    server: SmtpServer,
    *,
    text: str | None,
    html: str | None,
    thread_ref: str | None = None,
) -> tuple[EmailMessage, list[str]]:
    """The MIME message and its envelope recipients (To, Cc and Bcc).

    `thread_ref` is the Message-ID of earlier mail about the same entity, to reply under.
    """
    to, cc, bcc = (_addresses(params.get(key), key) for key in ("to", "cc", "bcc"))
    if not (to or cc or bcc):
        raise ValueError("no recipients: to, cc and bcc are all empty")
    message = EmailMessage()
    message["From"] = server.sender
    if to:
        message["To"] = ", ".join(formataddr(a) for a in to)
    if cc:
        message["Cc"] = ", ".join(formataddr(a) for a in cc)
    if reply_to := _addresses(params.get("reply_to"), "reply_to"):
        message["Reply-To"] = ", ".join(formataddr(a) for a in reply_to)
    message["Subject"] = _one_line(str(params["subject"]))
    message["Date"] = format_datetime(ctx.now)
    message["Message-ID"] = message_id(ctx.idempotency_key)
    # RFC 3834: mail from a program; well-behaved auto-responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    if thread_ref and thread_ref != message["Message-ID"]:
        message["In-Reply-To"] = thread_ref
        message["References"] = thread_ref
    for header, value in dict(params.get("headers") or {}).items():
        if header.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {header!r} is set by the connector; remove it")
        message[header] = _one_line(str(value))
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    else:
        raise ValueError("no body: give text, html or template")
    return message, [address for _, address in (*to, *cc, *bcc)]


def message_id(idempotency_key: str) -> str:
    """`<key@switchboard>`: the same delivery always carries the same Message-ID."""
    return f"<{re.sub(r'[^A-Za-z0-9_-]', '-', idempotency_key)}@switchboard>"


_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


def _addresses(value: Any, key: str) -> list[tuple[str, str]]:
    """(name, address) pairs from a string (commas allowed) or a list; blanks are skipped."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else [str(v) for v in value]
    pairs: list[tuple[str, str]] = []
    for item in items:
        if "\r" in item or "\n" in item:
            raise ValueError(f"{key} {item!r} contains a line break")
        if not item.strip():
            continue
        for name, address in getaddresses([item]):
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"{key} {item!r} is not a list of email addresses")
            if not address.isascii():
                raise ValueError(
                    f"{key} address {address!r} is not ASCII; internationalized addresses "
                    "(SMTPUTF8) are not supported"
                )
            pairs.append((name, address))
    return pairs


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _tls_context(server: SmtpServer) -> ssl.SSLContext | None:
    if server.ca_file is None or server.security == "none":
        return None
    try:
        return ssl.create_default_context(cafile=str(server.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_file {server.ca_file} cannot be used: {exc}") from exc


def classify_smtp_error(exc: Exception, server: SmtpServer) -> SendResult:
    """Map an aiosmtplib or socket error to retry (4xx, network) or fail (5xx, setup)."""
    where = server.where
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        reason = f"{where} refused every recipient ({detail})"
        if any(400 <= code < 500 for code in codes):
            return retry(None, reason, status_code=min(codes))
        return fail(reason, status_code=max(codes))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and exc.code >= 500:
        return fail(
            f"{where} rejected the login of {server.username!r} ({exc.code} {exc.message}); "
            "check the destination's username and password",
            status_code=exc.code,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"{where} answered {exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            return retry(None, reason, status_code=exc.code)
        return fail(reason, status_code=exc.code)
    if tls_error := _tls_error(exc):
        if isinstance(tls_error, ssl.SSLCertVerificationError):
            return fail(
                f"{where} certificate is not trusted ({tls_error.verify_message}); "
                "fix the server certificate or set ca_file"
            )
        return fail(
            f"TLS with {where} failed ({tls_error.reason or tls_error}); "
            "check security (tls for port 465, starttls for 587) and port"
        )
    if isinstance(exc, TimeoutError):
        return retry(None, f"timed out talking to {where}")
    if type(exc) in (aiosmtplib.SMTPException, aiosmtplib.SMTPNotSupported):
        # aiosmtplib's bare SMTPException means a missing extension (STARTTLS, AUTH):
        # the server works but does not offer what the destination asks for.
        return fail(
            f"{where}: {str(exc).rstrip('.')}; check the destination's security and username"
        )
    message = exc.message if isinstance(exc, aiosmtplib.SMTPException) else str(exc)
    return retry(None, f"could not reach {where}: {type(exc).__name__}: {message}")


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `exc`: aiosmtplib wraps handshake failures in SMTPConnectError."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _redact(text: str, password: str | None) -> str:
    return text.replace(password, "REDACTED") if password else text


def _redacted(result: SendResult, password: str | None) -> SendResult:
    """A server may echo what it was sent; the password never reaches a reason."""
    reason = _redact(result.reason, password)
    if reason == result.reason:
        return result
    return SendResult(
        result.outcome, reason=reason, after=result.after, status_code=result.status_code
    )
