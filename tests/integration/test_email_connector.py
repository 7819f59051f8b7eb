"""EmailConnector against a real SMTP server: aiosmtpd on 127.0.0.1, in a thread."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from jsonschema import Draft202012Validator

from connectors.base import ConnectorEnv, Destination, SendResult
from connectors.email import EmailConnector, params_schema
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action
from tests.support import REPO, free_port

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = "3f" * 32
PASSWORD = "smtp-pw-not-real-9c1d"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


@dataclass
class RecordingHandler:
    """Accepts mail and records it; replies can be scripted per recipient or for DATA."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        transport = server.transport
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=parsed,
                tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
                login=login,
            )
        )
        return "250 2.0.0 Message accepted"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    assert isinstance(auth_data, LoginPassword)
    if auth_data.login == b"hub" and auth_data.password == PASSWORD.encode():
        return AuthResult(success=True, auth_data=auth_data)
    # A careless server that quotes what it was sent: the password must not leak from here.
    wrong = auth_data.password.decode()
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad password {wrong}")


@dataclass
class Server:
    port: int
    handler: RecordingHandler


@pytest.fixture
def smtp() -> Iterator[Server]:
    """A plain SMTP server that also offers AUTH without TLS (for the login tests)."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield Server(port, handler)
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made by the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


def _tls_server(certificate: Certificate, *, implicit: bool) -> tuple[Controller, Server]:
    handler = RecordingHandler()
    port = free_port()
    tls: dict[str, Any] = (
        {"ssl_context": certificate.server_context()}
        if implicit
        else {"tls_context": certificate.server_context(), "require_starttls": True}
    )
    controller = Controller(handler, hostname="127.0.0.1", port=port, **tls)
    controller.start()
    return controller, Server(port, handler)


def _destination(port: int, **options: Any) -> Destination:
    return Destination(
        name="team-mail",
        connector="email",
        options={
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from": "Switchboard <hub@example.com>",
            "timeout_s": 5,
            **options,
        },
    )


def _send(
    destination: Destination,
    params: Mapping[str, Any],
    *,
    base_dir: Path = REPO,
    key: str = KEY,
    entity_refs: Mapping[str, str] | None = None,
) -> SendResult:
    ctx = delivery_context(
        destination, now=NOW, rule_id="weekly-report", idempotency_key=key, entity_refs=entity_refs
    )
    action = rendered_action("email", destination.name, params, destination_param="via")

    async def run() -> SendResult:
        async with httpx.AsyncClient() as http:
            connector = EmailConnector(ConnectorEnv(http=http, base_dir=base_dir))
            return await connector.send(action, ctx)

    return asyncio.run(run())


SIMPLE = {"to": "ada@example.com", "subject": "Hello", "text": "Plain body"}

WEEKLY_VARS: dict[str, Any] = {
    "period": "16-22 Nov 2026",
    "tasks_done": [
        {"title": "<script>alert(1)</script> launch post", "assignee": "Ada",
         "url": "https://www.notion.so/Launch-post-1"},
        {"title": "Fix login", "url": "javascript:alert(2)"},
    ],
    "tasks_in_progress": [{"title": "Pricing page", "assignee": "Bob", "due": "2026-11-28"}],
    "milestones": [{"title": "Public beta", "status": "On track", "due": "2026-12-01"}],
    "people": [{"name": "Ada", "done": 1, "in_progress": 0},
               {"name": "Bob", "done": 0, "in_progress": 1}],
}  # fmt: skip


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


# --- the message -----------------------------------------------------------------------------


def test_weekly_report_arrives_as_multipart_alternative_with_text_and_html(smtp: Server) -> None:
    result = _send(
        _destination(smtp.port),
        {"to": "team@example.com", "subject": "Weekly report", "template": "weekly-report",
         "vars": WEEKLY_VARS},
    )  # fmt: skip

    assert result.outcome == "ok", result.reason
    [got] = smtp.handler.received
    assert got.message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in got.message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text, html = _body(got.message, "plain"), _body(got.message, "html")
    assert "Weekly report: 16-22 Nov 2026" in text
    assert "<script>alert(1)</script> launch post (Ada)" in text
    assert "Pricing page (Bob), due 2026-11-28" in text
    assert "Public beta: On track (due 2026-12-01)" in text
    assert "Ada: 1 / 0" in text
    assert "Bob: 0 / 1" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; launch post" in html
    assert "<script>" not in html
    assert '<a href="https://www.notion.so/Launch-post-1">' in html
    assert "javascript:" not in html
    assert "<td>Public beta</td>" in html


def test_headers_carry_sender_recipients_subject_date_and_message_id(smtp: Server) -> None:
    result = _send(
        _destination(smtp.port),
        {
            "to": "Ada Lovelace <ada@example.com>, bob@example.com",
            "cc": ["lead@example.com"],
            "reply_to": "ops@example.com",
            "subject": "Task done:\n Write launch post",
            "text": "body",
            "headers": {"X-Switchboard-Rule": "task-done"},
        },
    )

    assert result.outcome == "ok", result.reason
    message = smtp.handler.received[0].message
    assert message["From"] == "Switchboard <hub@example.com>"
    assert message["To"] == "Ada Lovelace <ada@example.com>, bob@example.com"
    assert message["Cc"] == "lead@example.com"
    assert message["Reply-To"] == "ops@example.com"
    assert message["Subject"] == "Task done: Write launch post"
    assert message["Date"] == format_datetime(NOW)
    assert message["Message-ID"] == f"<{KEY}@switchboard>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Switchboard-Rule"] == "task-done"
    assert message["In-Reply-To"] is None
    assert result.ref == f"<{KEY}@switchboard>"


def test_non_ascii_subject_and_display_name_arrive_intact(smtp: Server) -> None:
    result = _send(
        _destination(smtp.port),
        {**SIMPLE, "to": "Jörg Müller <jorg@example.com>", "subject": "Grüße ✅ erledigt"},
    )

    assert result.outcome == "ok", result.reason
    message = smtp.handler.received[0].message
    assert message["Subject"] == "Grüße ✅ erledigt"
    assert message["To"] == "Jörg Müller <jorg@example.com>"


def test_cc_and_bcc_are_envelope_recipients_and_bcc_is_never_a_header(smtp: Server) -> None:
    result = _send(
        _destination(smtp.port),
        {**SIMPLE, "cc": "lead@example.com", "bcc": ["archive@example.com", "audit@example.com"]},
    )

    assert result.outcome == "ok", result.reason
    [got] = smtp.handler.received
    assert got.mail_from == "hub@example.com"
    assert got.rcpt_tos == [
        "ada@example.com", "lead@example.com", "archive@example.com", "audit@example.com",
    ]  # fmt: skip
    assert got.message["Bcc"] is None
    assert "archive@example.com" not in got.message.as_string()


def test_a_resend_of_the_same_delivery_carries_the_same_message_id(smtp: Server) -> None:
    first = _send(_destination(smtp.port), SIMPLE)
    again = _send(_destination(smtp.port), SIMPLE)
    other = _send(_destination(smtp.port), SIMPLE, key="ab" * 32)

    ids = [r.message["Message-ID"] for r in smtp.handler.received]
    assert ids == [f"<{KEY}@switchboard>", f"<{KEY}@switchboard>", f"<{'ab' * 32}@switchboard>"]
    assert first.ref == again.ref != other.ref


def test_text_only_is_a_single_plain_part(smtp: Server) -> None:
    _send(_destination(smtp.port), SIMPLE)

    message = smtp.handler.received[0].message
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Plain body"


def test_inline_text_and_html_become_alternatives(smtp: Server) -> None:
    _send(
        _destination(smtp.port),
        {"to": "ada@example.com", "subject": "s", "text": "plain", "html": "<p>rich</p>"},
    )

    message = smtp.handler.received[0].message
    assert message.get_content_type() == "multipart/alternative"
    assert _body(message, "html").strip() == "<p>rich</p>"
    assert _body(message, "plain").strip() == "plain"


def test_mail_about_an_entity_already_mailed_replies_in_its_thread(smtp: Server) -> None:
    earlier = "<" + "0" * 64 + "@switchboard>"

    _send(_destination(smtp.port), SIMPLE, entity_refs={"": earlier})

    message = smtp.handler.received[0].message
    assert message["In-Reply-To"] == earlier
    assert message["References"] == earlier


def test_template_files_come_from_templates_dir_with_html_escaped_and_text_raw(
    smtp: Server, tmp_path: Path
) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "note.txt.j2").write_text("Hi {{ vars.name }}!", encoding="utf-8")
    (tmp_path / "mail" / "note.html.j2").write_text("<b>{{ vars.name }}</b>", encoding="utf-8")

    result = _send(
        _destination(smtp.port, templates_dir="mail"),
        {"to": "ada@example.com", "subject": "s", "template": "note",
         "vars": {"name": "Tom & <Jerry>"}},
        base_dir=tmp_path,
    )  # fmt: skip

    assert result.outcome == "ok", result.reason
    message = smtp.handler.received[0].message
    assert _body(message, "plain").strip() == "Hi Tom & <Jerry>!"
    assert _body(message, "html").strip() == "<b>Tom &amp; &lt;Jerry&gt;</b>"


def test_template_sandbox_refuses_unsafe_attribute_access(smtp: Server, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "evil.txt.j2").write_text(
        "{{ vars.__class__.__mro__ }}", encoding="utf-8"
    )

    result = _send(
        _destination(smtp.port),
        {"to": "ada@example.com", "subject": "s", "template": "evil", "vars": {}},
        base_dir=tmp_path,
    )

    assert result.outcome == "fail"
    assert "evil.txt.j2" in result.reason
    assert smtp.handler.received == []


def test_missing_template_fails_naming_the_files_it_looked_for(
    smtp: Server, tmp_path: Path
) -> None:
    result = _send(
        _destination(smtp.port),
        {"to": "ada@example.com", "subject": "s", "template": "nope"},
        base_dir=tmp_path,
    )

    assert result.outcome == "fail"
    assert "nope.html.j2" in result.reason
    assert smtp.handler.received == []


def test_template_reading_a_var_the_action_lacks_fails_naming_file_and_var(
    smtp: Server,
) -> None:
    result = _send(
        _destination(smtp.port),
        {"to": "ada@example.com", "subject": "s", "template": "weekly-report", "vars": {}},
    )

    assert result.outcome == "fail"
    assert "weekly-report.txt.j2" in result.reason
    assert "period" in result.reason


@pytest.mark.parametrize(
    ("params", "reason_has"),
    [
        ({**SIMPLE, "to": "ada@example.com\r\nBcc: victim@example.com"}, "line break"),
        ({**SIMPLE, "to": "not an address"}, "not a list of email addresses"),
        ({**SIMPLE, "to": "jörg@exämple.com"}, "not ASCII"),
        ({**SIMPLE, "to": "", "cc": []}, "no recipients"),
        ({**SIMPLE, "headers": {"Message-ID": "<x@y>"}}, "set by the connector"),
        ({**SIMPLE, "headers": {"bcc": "x@example.com"}}, "set by the connector"),
    ],
    ids=[
        "header-injection",
        "bad-address",
        "non-ascii-address",
        "no-recipients",
        "own-message-id",
        "bcc-header",
    ],
)
def test_unusable_params_fail_before_connecting(
    params: dict[str, Any], reason_has: str, smtp: Server
) -> None:
    result = _send(_destination(smtp.port), params)

    assert result.outcome == "fail"
    assert reason_has in result.reason
    assert smtp.handler.received == []


# --- login -----------------------------------------------------------------------------------


def test_login_with_username_and_password_is_used(smtp: Server) -> None:
    result = _send(_destination(smtp.port, username="hub", password=Secret(PASSWORD)), SIMPLE)

    assert result.outcome == "ok", result.reason
    assert smtp.handler.received[0].login == "hub"
    assert not smtp.handler.received[0].tls


def test_rejected_login_fails_clearly_without_the_password(smtp: Server) -> None:
    result = _send(_destination(smtp.port, username="hub", password=Secret(PASSWORD + "x")), SIMPLE)

    assert result.outcome == "fail"
    assert result.status_code == 535
    assert "rejected the login of 'hub'" in result.reason
    assert "username and password" in result.reason
    assert PASSWORD not in result.reason
    assert PASSWORD not in repr(result)
    assert smtp.handler.received == []


# --- what the server's answer means ----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    outcome: str = "ok"
    status_code: int | None = None
    reason_has: str = ""


CASES: dict[str, Case] = {
    "250-is-ok": Case(status_code=250),
    "451-greylisted-recipient-retries": Case(
        {"ada@example.com": "451 4.7.1 Greylisted, try again later"},
        outcome="retry", status_code=451, reason_has="Greylisted",
    ),
    "550-unknown-recipient-fails-with-the-server-message": Case(
        {"ada@example.com": "550 5.1.1 No such user here"},
        outcome="fail", status_code=550, reason_has="No such user here",
    ),
    "452-mailbox-full-at-data-retries": Case(
        data_reply="452 4.3.1 Insufficient system storage",
        outcome="retry", status_code=452, reason_has="Insufficient system storage",
    ),
    "554-rejected-at-data-fails": Case(
        data_reply="554 5.7.1 Message rejected as spam",
        outcome="fail", status_code=554, reason_has="rejected as spam",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_smtp_reply_maps_to_ok_retry_or_fail(case: Case, smtp: Server) -> None:
    smtp.handler.rcpt_replies.update(case.rcpt_replies)
    smtp.handler.data_reply = case.data_reply

    result = _send(_destination(smtp.port, username="hub", password=Secret(PASSWORD)), SIMPLE)

    assert result.outcome == case.outcome, result.reason
    assert result.status_code == case.status_code
    assert case.reason_has in result.reason
    assert result.after is None
    assert PASSWORD not in result.reason


def test_one_refused_recipient_of_several_is_ok_and_says_who(smtp: Server) -> None:
    # The others already have the mail: a retry would send them a duplicate.
    smtp.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 No such user"

    result = _send(_destination(smtp.port), {**SIMPLE, "cc": "gone@example.com"})

    assert result.outcome == "ok"
    assert "gone@example.com: 550" in result.reason
    assert smtp.handler.received[0].rcpt_tos == ["ada@example.com"]


def test_server_down_is_retried() -> None:
    result = _send(_destination(free_port()), SIMPLE)

    assert result.outcome == "retry"
    assert "could not reach SMTP server 127.0.0.1" in result.reason


def test_starttls_asked_of_a_server_without_it_fails_instead_of_sending_in_clear(
    smtp: Server,
) -> None:
    result = _send(_destination(smtp.port, security="starttls"), SIMPLE)

    assert result.outcome == "fail"
    assert "STARTTLS" in result.reason
    assert smtp.handler.received == []


# --- TLS -------------------------------------------------------------------------------------


def test_starttls_with_the_servers_ca_sends_encrypted(
    certificate: Certificate, tmp_path: Path
) -> None:
    shutil.copy(certificate.cert, tmp_path / "ca.pem")
    controller, server = _tls_server(certificate, implicit=False)
    try:
        result = _send(
            _destination(server.port, security="starttls", ca_file="ca.pem"),
            SIMPLE,
            base_dir=tmp_path,
        )
    finally:
        controller.stop()

    assert result.outcome == "ok", result.reason
    assert server.handler.received[0].tls


def test_implicit_tls_with_the_servers_ca_sends_encrypted(
    certificate: Certificate, tmp_path: Path
) -> None:
    shutil.copy(certificate.cert, tmp_path / "ca.pem")
    controller, server = _tls_server(certificate, implicit=True)
    try:
        result = _send(
            _destination(server.port, security="tls", ca_file="ca.pem"), SIMPLE, base_dir=tmp_path
        )
    finally:
        controller.stop()

    assert result.outcome == "ok", result.reason
    assert server.handler.received[0].tls


def test_untrusted_certificate_fails_and_names_ca_file(certificate: Certificate) -> None:
    controller, server = _tls_server(certificate, implicit=False)
    try:
        result = _send(_destination(server.port, security="starttls"), SIMPLE)
    finally:
        controller.stop()

    assert result.outcome == "fail"
    assert "not trusted" in result.reason
    assert "ca_file" in result.reason
    assert server.handler.received == []


def test_plain_connection_to_a_starttls_only_server_is_refused_by_it(
    certificate: Certificate,
) -> None:
    controller, server = _tls_server(certificate, implicit=False)
    try:
        result = _send(_destination(server.port, security="none"), SIMPLE)
    finally:
        controller.stop()

    assert result.outcome == "fail"
    assert result.status_code == 530
    assert "STARTTLS" in result.reason


# --- schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"via": "m", "to": "a@example.com", "subject": "s"},
        {"via": "m", "to": "a@example.com", "subject": "s", "template": "x", "text": "t"},
        {"via": "m", "to": "a@example.com", "subject": "s", "template": "../secrets"},
        {"via": "m", "to": "a@example.com", "subject": "s", "text": "t", "vars": {}},
        {"via": "m", "to": "a@example.com", "subject": "s", "text": "t", "headers": {"A B": "c"}},
    ],
    ids=["no-body", "template-and-text", "template-path", "vars-without-template", "header-name"],
)
def test_params_schema_refuses(params: dict[str, Any]) -> None:
    assert not Draft202012Validator(params_schema).is_valid(params)


def test_params_schema_accepts_the_weekly_report_action() -> None:
    action = {"via": "team-mail", "to": ["team@example.com"], "subject": "Weekly report",
              "template": "weekly-report", "vars": WEEKLY_VARS}  # fmt: skip
    assert Draft202012Validator(params_schema).is_valid(action)
