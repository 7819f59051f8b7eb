"""WebhookConnector against a respx fake receiver; signatures checked the way a receiver does."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from connectors.base import ConnectorEnv, DeliveryContext, Destination, SendResult
from connectors.webhook import WebhookConnector, sign
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action

URL = "https://hooks.example.com/switchboard"
SECRET = "whsec_" + base64.b64encode(b"fixture-signing-key-not-real-32b").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"fixture-old-signing-key-not-real").decode()
IDEMPOTENCY_KEY = "9f2c" * 16
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
URL_TOKEN = "T0-fixture-url-token-not-real"
SECRET_URL = f"https://hooks.example.com/in/{URL_TOKEN}"
PUBLIC_ADDRESS = "93.184.215.14"

# The signing test vector of the Standard Webhooks reference library: standard-webhooks/
# standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_PAYLOAD = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _destination(url: str | Secret = URL, **options: Any) -> Destination:
    defaults: dict[str, Any] = {"url": url, "secret": Secret(SECRET, origin="env:HOOK_SECRET")}
    return Destination(name="orders", connector="webhook", options={**defaults, **options})


def _context(
    destination: Destination | None,
    *,
    now: datetime = NOW,
    attempt: int = 1,
    key: str = IDEMPOTENCY_KEY,
) -> DeliveryContext:
    return delivery_context(
        destination, now=now, rule_id="order-created", idempotency_key=key, attempt=attempt
    )


@dataclass
class Sent:
    """What one `send` returned and every request the fake receiver saw."""

    result: SendResult
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]


def _send(
    router: respx.Router,
    params: Mapping[str, Any] | None = None,
    *,
    destination: Destination | None = None,
    ctx: DeliveryContext | None = None,
) -> Sent:
    destination = destination if destination is not None else _destination()
    ctx = ctx if ctx is not None else _context(destination)
    action = rendered_action(
        "webhook",
        destination.name,
        params if params is not None else {"body": {"a": 1}},
        destination_param="to",
    )

    async def run() -> SendResult:
        transport = httpx.MockTransport(router.async_handler)
        async with httpx.AsyncClient(transport=transport) as http:
            env = ConnectorEnv(http=http, base_dir=Path("."))
            connector = WebhookConnector(env, resolver=_public_dns)
            return await connector.send(action, ctx)

    result = asyncio.run(run())
    return Sent(result, [call.request for call in router.calls])


def _public_dns(host: str, port: int) -> list[str]:
    """The fake receivers' hosts resolve to a public address, without asking DNS."""
    return [PUBLIC_ADDRESS]


def _receiver(status: int = 204, **kwargs: Any) -> respx.Router:
    router = respx.Router(assert_all_called=False)
    # Requests go to the address the SSRF guard checked (DNS pinning), Host kept.
    router.route(host__in=[PUBLIC_ADDRESS, "hooks.example.com"]).respond(status, **kwargs)
    return router


def verify_as_receiver(request: httpx.Request, secret: str, *, now: datetime = NOW) -> bool:
    """What a Standard Webhooks receiver does: recompute over the raw body, compare in
    constant time against each `v1,` entry, and check the timestamp is within 5 minutes."""
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    if abs(int(timestamp) - now.timestamp()) > 300:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + request.content
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in request.headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


# --- signing -----------------------------------------------------------------------------


def test_sign_matches_the_standard_webhooks_test_vector() -> None:
    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))

    signature = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_PAYLOAD.encode(), [key])

    assert signature == VECTOR_SIGNATURE


def test_a_sent_request_carries_the_test_vector_signature() -> None:
    # Given the vector's secret, id, time and payload, the wire headers must be the vector's.
    destination = _destination(secret=Secret(VECTOR_SECRET))
    ctx = _context(
        destination,
        now=datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC),
        key=VECTOR_ID,
    )

    sent = _send(_receiver(), {"body": VECTOR_PAYLOAD}, destination=destination, ctx=ctx)

    assert sent.request.content == VECTOR_PAYLOAD.encode()
    assert sent.request.headers["webhook-id"] == VECTOR_ID
    assert sent.request.headers["webhook-timestamp"] == str(VECTOR_TIMESTAMP)
    assert sent.request.headers["webhook-signature"] == VECTOR_SIGNATURE


def test_receiver_verifies_the_signature_over_the_raw_body() -> None:
    sent = _send(_receiver(), {"body": {"type": "order.created", "data": {"id": "ö-1"}}})

    assert sent.result.outcome == "ok"
    assert verify_as_receiver(sent.request, SECRET)


def test_receiver_rejects_the_signature_with_another_secret() -> None:
    sent = _send(_receiver(), {"body": {"a": 1}})

    assert not verify_as_receiver(sent.request, OLD_SECRET)


def test_receiver_rejects_a_tampered_body() -> None:
    sent = _send(_receiver(), {"body": {"amount": 1}})
    tampered = httpx.Request("POST", URL, headers=sent.request.headers, content=b'{"amount":1000}')

    assert not verify_as_receiver(tampered, SECRET)


def test_webhook_id_is_the_idempotency_key_and_stays_the_same_on_a_retry() -> None:
    # Given the same delivery sent at attempt 1 and, a minute later, at attempt 2
    destination = _destination()
    first = _send(_receiver(), destination=destination, ctx=_context(destination))
    later = NOW + timedelta(minutes=1)
    second = _send(
        _receiver(), destination=destination, ctx=_context(destination, now=later, attempt=2)
    )

    # Then the receiver can drop the duplicate by webhook-id, and each attempt still verifies
    assert first.request.headers["webhook-id"] == IDEMPOTENCY_KEY
    assert second.request.headers["webhook-id"] == IDEMPOTENCY_KEY
    assert int(second.request.headers["webhook-timestamp"]) == int(later.timestamp())
    assert first.request.headers["webhook-signature"] != second.request.headers["webhook-signature"]
    assert verify_as_receiver(second.request, SECRET, now=later)


def test_timestamp_is_the_engine_clock_in_unix_seconds() -> None:
    now = datetime(2026, 11, 21, 10, 0, 5, 900000, tzinfo=UTC)

    sent = _send(_receiver(), ctx=_context(_destination(), now=now))

    assert sent.request.headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert verify_as_receiver(sent.request, SECRET, now=now)


def test_rotation_signs_with_the_new_and_the_previous_secret() -> None:
    destination = _destination(previous_secret=Secret(OLD_SECRET))

    sent = _send(_receiver(), destination=destination)

    entries = sent.request.headers["webhook-signature"].split(" ")
    assert len(entries) == 2
    assert all(entry.startswith("v1,") for entry in entries)
    assert verify_as_receiver(sent.request, SECRET)
    assert verify_as_receiver(sent.request, OLD_SECRET)


def test_secret_without_the_whsec_prefix_is_accepted() -> None:
    destination = _destination(secret=Secret(SECRET.removeprefix("whsec_")))

    sent = _send(_receiver(), destination=destination)

    assert verify_as_receiver(sent.request, SECRET)


def test_without_a_secret_no_signature_is_sent_but_id_and_timestamp_are() -> None:
    destination = Destination(name="orders", connector="webhook", options={"url": URL})

    sent = _send(_receiver(), destination=destination)

    assert sent.result.outcome == "ok"
    assert "webhook-signature" not in sent.request.headers
    assert sent.request.headers["webhook-id"] == IDEMPOTENCY_KEY


def test_malformed_secret_fails_without_a_request_or_quoting_it() -> None:
    bad = "whsec_not base64 fixture-not-real!"
    router = _receiver()

    sent = _send(router, destination=_destination(secret=Secret(bad)))

    assert sent.result.outcome == "fail"
    assert "secret" in sent.result.reason
    assert "fixture-not-real" not in sent.result.reason
    assert sent.requests == []


# --- the body ----------------------------------------------------------------------------


def test_object_body_is_sent_as_compact_utf8_json() -> None:
    sent = _send(_receiver(), {"body": {"title": "Café", "n": [1, 2]}})

    assert sent.request.content == '{"title":"Café","n":[1,2]}'.encode()
    assert sent.request.headers["content-type"] == "application/json"


def test_list_body_is_sent_as_json() -> None:
    sent = _send(_receiver(), {"body": [{"id": 1}]})

    assert json.loads(sent.request.content) == [{"id": 1}]


def test_string_body_is_sent_byte_for_byte_and_signed_as_sent() -> None:
    # A rendered `{{ event | tojson }}` keeps its spacing; re-serialising would break receivers.
    body = '{"id": "evt-1",  "type": "github.issues.opened"}'

    sent = _send(_receiver(), {"body": body})

    assert sent.request.content == body.encode()
    assert verify_as_receiver(sent.request, SECRET)


def test_string_body_that_is_not_json_fails_without_a_request() -> None:
    sent = _send(_receiver(), {"body": "{'id': 1}"})

    assert sent.result.outcome == "fail"
    assert "not valid JSON" in sent.result.reason
    assert sent.requests == []


def test_plain_text_body_is_sent_with_its_content_type() -> None:
    sent = _send(_receiver(), {"body": "task done", "content_type": "text/plain; charset=utf-8"})

    assert sent.request.content == b"task done"
    assert sent.request.headers["content-type"] == "text/plain; charset=utf-8"
    assert verify_as_receiver(sent.request, SECRET)


def test_vendor_json_content_type_is_checked_as_json() -> None:
    sent = _send(_receiver(), {"body": "nope", "content_type": "application/vnd.acme+json"})

    assert sent.result.outcome == "fail"
    assert sent.requests == []


def test_object_body_with_a_non_json_content_type_fails() -> None:
    sent = _send(_receiver(), {"body": {"a": 1}, "content_type": "text/plain"})

    assert sent.result.outcome == "fail"
    assert "text/plain" in sent.result.reason
    assert sent.requests == []


def test_body_that_cannot_be_json_fails_without_a_request() -> None:
    # YAML turns an unquoted 2026-11-21 into a date, which JSON cannot carry.
    sent = _send(_receiver(), {"body": {"due": datetime(2026, 11, 21, tzinfo=UTC).date()}})

    assert sent.result.outcome == "fail"
    assert sent.requests == []


# --- headers, method, timeout ------------------------------------------------------------


def test_destination_and_action_headers_are_sent_and_the_action_wins() -> None:
    destination = _destination(headers={"X-Source": "switchboard", "X-Env": "prod"})

    sent = _send(
        _receiver(),
        {"body": {}, "headers": {"X-Env": "staging", "X-Event-Type": "order.created"}},
        destination=destination,
    )

    assert sent.request.headers["x-source"] == "switchboard"
    assert sent.request.headers["x-env"] == "staging"
    assert sent.request.headers["x-event-type"] == "order.created"


@pytest.mark.parametrize("name", ["webhook-id", "Webhook-Signature", "Content-Type", "Host"])
def test_a_header_the_connector_owns_cannot_be_overridden(name: str) -> None:
    sent = _send(_receiver(), {"body": {}, "headers": {name: "x"}})

    assert sent.result.outcome == "fail"
    assert name in sent.result.reason
    assert sent.requests == []


def test_a_header_value_with_a_line_break_fails_without_a_request() -> None:
    sent = _send(_receiver(), {"body": {}, "headers": {"X-Title": "a\r\nX-Injected: 1"}})

    assert sent.result.outcome == "fail"
    assert sent.requests == []


def test_authorization_secret_is_sent_as_the_authorization_header() -> None:
    destination = _destination(authorization=Secret("Bearer fixture-token-not-real"))

    sent = _send(_receiver(), destination=destination)

    assert sent.request.headers["authorization"] == "Bearer fixture-token-not-real"


def test_method_defaults_to_post_and_follows_destination_then_action() -> None:
    assert _send(_receiver()).request.method == "POST"
    put = _destination(method="PUT")
    assert _send(_receiver(), destination=put).request.method == "PUT"
    assert _send(_receiver(), {"body": {}, "method": "PATCH"}, destination=put).request.method == (
        "PATCH"
    )


def test_timeout_defaults_to_15_seconds_and_follows_the_destination() -> None:
    default = _send(_receiver()).request.extensions["timeout"]
    custom = _send(_receiver(), destination=_destination(timeout_s=25)).request.extensions[
        "timeout"
    ]

    assert default["read"] == 15.0
    assert custom["read"] == 25.0
    assert custom["connect"] == 5.0


def test_request_goes_to_the_checked_address_of_the_configured_url() -> None:
    sent = _send(_receiver())

    # Pinned: the address the guard approved, with the name kept for Host and TLS (SNI,
    # certificate check), so DNS is asked once and cannot answer differently later.
    assert str(sent.request.url) == URL.replace("hooks.example.com", PUBLIC_ADDRESS)
    assert sent.request.headers["host"] == "hooks.example.com"
    assert sent.request.extensions["sni_hostname"] == "hooks.example.com"


def test_a_name_that_rebinds_to_a_private_address_after_the_check_is_never_reached() -> None:
    # A rebinding DNS answers a public address first, then the metadata service.
    answers = iter([["93.184.215.14"], ["169.254.169.254"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    destination = _destination(url="http://rebind.example.net:8080/x")
    action = rendered_action("webhook", "orders", {"body": {}}, destination_param="to")
    router = respx.Router(assert_all_called=False)
    router.route().respond(204)

    async def run() -> SendResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http:
            connector = WebhookConnector(
                ConnectorEnv(http=http, base_dir=Path(".")), resolver=rebinding
            )
            return await connector.send(action, _context(destination))

    result = asyncio.run(run())

    (call,) = router.calls
    assert result.outcome == "ok"
    assert str(call.request.url) == "http://93.184.215.14:8080/x"
    assert call.request.headers["host"] == "rebind.example.net:8080"
    assert "sni_hostname" not in call.request.extensions  # plain http: no TLS name
    assert next(answers) == ["169.254.169.254"]  # the second answer was never asked for


def test_allowed_private_receivers_are_sent_to_by_name() -> None:
    destination = _destination(url="http://receiver.internal/hook", allow_private_network=True)
    router = respx.Router(assert_all_called=False)
    router.route(host="receiver.internal").respond(204)

    sent = _send(router, destination=destination)

    assert str(sent.request.url) == "http://receiver.internal/hook"


# --- what the answer means ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    router: respx.Router
    outcome: str
    after: float | None = None
    reason_has: str = ""


def _raising(exc_type: type[httpx.TransportError]) -> respx.Router:
    router = respx.Router(assert_all_called=False)
    router.route(host__in=[PUBLIC_ADDRESS, "hooks.example.com"]).mock(side_effect=exc_type)
    return router


def _cases() -> dict[str, Case]:
    return {
        "200-is-ok": Case(_receiver(200, json={"received": True}), "ok"),
        "202-is-ok": Case(_receiver(202), "ok"),
        "204-is-ok": Case(_receiver(204), "ok"),
        "301-fails-and-is-not-followed": Case(
            _receiver(301, headers={"Location": "https://new.example.com/hook"}),
            "fail",
            reason_has="redirect to https://new.example.com/hook",
        ),
        "307-fails-and-is-not-followed": Case(
            _receiver(307, headers={"Location": "/elsewhere"}), "fail", reason_has="redirect"
        ),
        "400-fails-with-the-receivers-text": Case(
            _receiver(400, json={"error": "missing field id"}),
            "fail",
            reason_has="missing field id",
        ),
        "401-fails": Case(_receiver(401, text="invalid signature"), "fail", reason_has="401"),
        "404-fails": Case(_receiver(404, text="Not Found"), "fail", reason_has="404"),
        "410-fails-saying-the-receiver-is-gone": Case(
            _receiver(410, text="endpoint disabled"), "fail", reason_has="no longer wants"
        ),
        "408-retries": Case(_receiver(408), "retry"),
        "429-retries-after-retry-after": Case(
            _receiver(429, text="slow down", headers={"Retry-After": "7"}), "retry", after=7.0
        ),
        "503-retries-after-an-http-date-retry-after": Case(
            _receiver(503, headers={"Retry-After": "Sat, 21 Nov 2026 10:02:00 GMT"}),
            "retry",
            after=120.0,
        ),
        "500-retries-with-engine-backoff": Case(_receiver(500, text="boom"), "retry"),
        "502-retries": Case(_receiver(502, text="Bad Gateway"), "retry"),
        "504-retries": Case(_receiver(504, text="Gateway Timeout"), "retry"),
        "read-timeout-retries": Case(_raising(httpx.ReadTimeout), "retry", reason_has="within 15s"),
        "connect-error-retries": Case(
            _raising(httpx.ConnectError), "retry", reason_has="ConnectError"
        ),
        "unsupported-protocol-fails": Case(
            _raising(httpx.UnsupportedProtocol), "fail", reason_has="not a usable"
        ),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_receiver_answer_maps_to_ok_retry_or_fail(name: str) -> None:
    case = _cases()[name]

    sent = _send(case.router)

    assert sent.result.outcome == case.outcome
    assert sent.result.after == case.after
    assert case.reason_has in sent.result.reason
    assert len(sent.requests) == 1


@pytest.mark.parametrize("name", list(_cases()))
def test_a_secret_url_never_appears_in_a_result(name: str) -> None:
    case = _cases()[name]
    destination = _destination(url=Secret(SECRET_URL))

    sent = _send(case.router, destination=destination)

    assert URL_TOKEN not in sent.result.reason
    assert URL_TOKEN not in repr(sent.result)


def test_a_secret_url_echoed_by_a_proxy_is_scrubbed_from_the_reason() -> None:
    page = f"<html>502 Bad Gateway: POST /in/{URL_TOKEN} HTTP/1.1</html>"
    destination = _destination(url=Secret(SECRET_URL))

    sent = _send(_receiver(502, text=page), destination=destination)

    assert sent.result.outcome == "retry"
    assert URL_TOKEN not in sent.result.reason
    assert "hooks.example.com" in sent.result.reason


def test_a_plain_url_with_a_token_query_is_redacted_in_the_reason() -> None:
    destination = _destination(url=f"{URL}?token={URL_TOKEN}")

    sent = _send(_receiver(500, text="down"), destination=destination)

    assert URL_TOKEN not in sent.result.reason
    assert "token=REDACTED" in sent.result.reason


def test_an_unparseable_secret_url_fails_without_leaking_it() -> None:
    destination = _destination(url=Secret(f"https://hooks.example.com:port/{URL_TOKEN}"))

    sent = _send(_receiver(), destination=destination)

    assert sent.result.outcome == "fail"
    assert URL_TOKEN not in sent.result.reason
    assert sent.requests == []


def test_missing_destination_or_url_fails_without_a_request() -> None:
    no_url = Destination(name="orders", connector="webhook", options={})

    sent = _send(_receiver(), destination=no_url)

    assert sent.result.outcome == "fail"
    assert "url" in sent.result.reason
    assert sent.requests == []


# --- schemas -----------------------------------------------------------------------------


def test_rule_params_schema_refuses_a_reserved_header_at_load_time() -> None:
    params = {"to": "orders", "body": {}, "headers": {"Webhook-Signature": "v1,forged"}}

    errors = list(
        jsonschema.Draft202012Validator(WebhookConnector.params_schema).iter_errors(params)
    )

    assert errors


def test_rule_params_schema_requires_a_body() -> None:
    validator = jsonschema.Draft202012Validator(WebhookConnector.params_schema)

    assert not validator.is_valid({"to": "orders"})
    assert validator.is_valid({"to": "orders", "body": "{{ event | tojson }}"})
