"""The source contract (STYLE.md "Contract suites"), run over every registered source.

Every captured request in /work/shared/fixtures/<source> verifies once signed the way the
provider signs; a changed signature, and for body-signing providers a changed body, is
refused with 401; what it normalizes to validates against schemas/event.schema.json; and
its delivery id and event ids are the same when the request is replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from nacl.signing import SigningKey

from hub.clock import FakeClock
from hub.errors import RequestRejected
from hub.plugins import load_plugins
from hub.secrets import Secret
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source, Verdict
from hub.sources.slack_commands import sign as slack_sign
from tests.support import FIXTURES, github_signature

REPO = Path(__file__).resolve().parents[2]
SOURCES = load_plugins().sources
VALIDATOR = Draft202012Validator(
    json.loads((REPO / "schemas" / "event.schema.json").read_text(encoding="utf-8")),
    format_checker=FormatChecker(),
)
SECRET = "contract-secret-not-real"
DISCORD_KEY = SigningKey.generate()
NOW_TS = str(int(FakeClock().now().timestamp()))

Sign = Callable[[bytes, dict[str, str]], dict[str, str]]


@dataclass(frozen=True)
class Signer:
    """How a provider signs a request, and the secret the source is configured with."""

    secret: Secret
    sign: Sign
    #: False where the credential is a shared token that does not cover the body.
    signs_body: bool = True


def _github(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "x-hub-signature-256": github_signature(body, SECRET)}


def _notion(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {**headers, "x-notion-signature": f"sha256={digest}"}


def _slack(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    return {
        **headers,
        "x-slack-request-timestamp": NOW_TS,
        "x-slack-signature": slack_sign(SECRET, NOW_TS, body),
    }


def _discord(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    signature = DISCORD_KEY.sign(NOW_TS.encode() + body).signature.hex()
    return {**headers, "x-signature-ed25519": signature, "x-signature-timestamp": NOW_TS}


def _token(header: str) -> Sign:
    def sign(body: bytes, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, header: SECRET}

    return sign


SIGNERS: dict[str, Signer] = {
    "github": Signer(Secret(SECRET), _github),
    "notion": Signer(Secret(SECRET), _notion),
    "notion-automation": Signer(Secret(SECRET), _token("x-switchboard-token"), signs_body=False),
    "slack": Signer(Secret(SECRET), _slack),
    "discord": Signer(Secret(DISCORD_KEY.verify_key.encode().hex()), _discord),
    "gcal": Signer(Secret(SECRET), _token("x-goog-channel-token"), signs_body=False),
}
NO_WEBHOOK = {
    "schedule": "fired in process by the scheduler; nothing arrives over HTTP",
    "intake": "task lists come through POST /intake/{name}; /hooks/intake is refused",
}


@dataclass(frozen=True)
class Capture:
    """One captured provider request, unsigned."""

    source: str
    name: str
    body: bytes
    headers: dict[str, str]


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): str(v) for k, v in headers.items() if not k.startswith("_")}


def _captures() -> Iterator[Capture]:
    for path in sorted((FIXTURES / "github").glob("*/*.json")):
        event = path.parent.name
        headers = {
            "x-github-event": event,
            "x-github-delivery": hashlib.md5(str(path).encode()).hexdigest(),  # noqa: S324
            "content-type": "application/json",
        }
        yield Capture("github", f"{event}/{path.name}", path.read_bytes(), headers)
    for path in sorted((FIXTURES / "notion" / "webhooks").glob("*.json")):
        doc = json.loads(path.read_bytes())
        # burst-same-page.json holds several deliveries; each is its own request.
        for i, item in enumerate(doc if isinstance(doc, list) else [doc]):
            body = json.dumps(item).encode() if isinstance(doc, list) else path.read_bytes()
            headers = {"content-type": "application/json"}
            yield Capture("notion", f"{path.name}#{i}", body, headers)
    for path in sorted((FIXTURES / "notion" / "automation").glob("*.json")):
        headers = {"content-type": "application/json"}
        yield Capture("notion-automation", path.name, path.read_bytes(), headers)
    for path in sorted((FIXTURES / "slack").glob("*.body.txt")):
        headers = {"content-type": "application/x-www-form-urlencoded"}
        yield Capture("slack", path.name, path.read_bytes(), headers)
    for path in sorted((FIXTURES / "discord").glob("interaction.*.json")):
        if not path.name.startswith("interaction.response."):
            headers = {"content-type": "application/json"}
            yield Capture("discord", path.name, path.read_bytes(), headers)
    for path in sorted((FIXTURES / "gcal" / "push").glob("*.headers.json")):
        headers = _lower(json.loads(path.read_bytes()))
        headers.pop("x-goog-channel-token")  # the signer sets the configured one
        yield Capture("gcal", path.name, b"", headers)


ALL = list(_captures())
CAPTURES = [pytest.param(c, id=f"{c.source}:{c.name}") for c in ALL]
BODY_SIGNED = [
    pytest.param(c, id=f"{c.source}:{c.name}")
    for c in ALL
    if SIGNERS[c.source].signs_body and c.body
]


def test_every_registered_source_is_covered() -> None:
    missing = set(SOURCES) - set(SIGNERS) - set(NO_WEBHOOK)
    assert not missing, f"add a signer (or a reason it takes no webhooks) for {sorted(missing)}"
    assert set(SIGNERS) <= set(SOURCES)
    assert {c.source for c in ALL} == set(SIGNERS)  # every signed source has captures


def _source(name: str) -> Source:
    cls = SOURCES[name]
    from_options = getattr(cls, "from_options", None)
    return from_options({}) if from_options is not None else cls()


def _verify(capture: Capture, headers: dict[str, str], body: bytes | None = None) -> Verdict:
    clock = FakeClock()
    request = HookRequest(
        source=capture.source,
        headers=headers,
        body=capture.body if body is None else body,
        received_at=clock.now(),
    )
    return _source(capture.source).verify(request, SIGNERS[capture.source].secret, clock)


def _normalize(capture: Capture, headers: dict[str, str], verdict: Verdict, at: int) -> list[str]:
    """The normalized events' ids, each checked against the event schema."""
    raw = RawEvent(
        id=f"raw-{at}",
        source=capture.source,
        provider_delivery_id=verdict.provider_delivery_id,
        headers=headers,
        body=capture.body,
        received_at=datetime(2026, 11, 21, 10, at, tzinfo=UTC),
    )
    events = _source(capture.source).normalize(raw, NormalizeContext(clock=FakeClock()))
    for event in events:
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in VALIDATOR.iter_errors(event.to_dict())
        ]
        assert errors == [], event.type
    return [event.id for event in events]


@pytest.mark.parametrize("capture", CAPTURES)
def test_a_signed_capture_verifies_normalizes_to_valid_events_with_stable_ids(
    capture: Capture,
) -> None:
    headers = SIGNERS[capture.source].sign(capture.body, capture.headers)

    first, again = _verify(capture, headers), _verify(capture, headers)

    assert first.provider_delivery_id
    assert first.provider_delivery_id == again.provider_delivery_id
    if first.store:
        ids = _normalize(capture, headers, first, at=1)
        assert ids == _normalize(capture, headers, again, at=7)  # a replay, minutes later
        assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("capture", CAPTURES)
def test_a_changed_signature_is_refused_with_401(capture: Capture) -> None:
    headers = SIGNERS[capture.source].sign(capture.body, capture.headers)
    forged = SIGNERS[capture.source].sign(capture.body + b" ", capture.headers)
    if forged == headers:  # a token: sign with another secret instead
        forged = {k: ("x" + v if v == SECRET else v) for k, v in headers.items()}

    with pytest.raises(RequestRejected) as info:
        _verify(capture, forged)

    assert info.value.status == 401


@pytest.mark.parametrize("capture", BODY_SIGNED)
def test_a_changed_body_is_refused_with_401(capture: Capture) -> None:
    headers = SIGNERS[capture.source].sign(capture.body, capture.headers)
    tampered = capture.body.replace(b"a", b"b", 1)
    assert tampered != capture.body

    with pytest.raises(RequestRejected) as info:
        _verify(capture, headers, body=tampered)

    assert info.value.status == 401
