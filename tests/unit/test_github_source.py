"""GitHubSource over every real GitHub payload: signatures, normalization, the event schema."""

from __future__ import annotations

import hmac
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from hub.clock import FakeClock
from hub.errors import MalformedPayload, SignatureError
from hub.events import Event
from hub.secrets import Secret
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Verdict
from hub.sources.github import GitHubSource

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures"
GITHUB_FIXTURES = FIXTURES / "github"
SCHEMA_PATH = REPO / "schemas" / "event.schema.json"

SECRET = "test-secret"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
OTHER_DELIVERY = "9a6a4b8e-cc78-11e3-81ab-4c9367dc0958"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
CONFIGURED_SECRET = Secret(SECRET, origin="test")


def _fixture_files() -> list[Path]:
    """Every `<event>/<action>.json` payload; a missing checkout becomes a failing case."""
    files = sorted(GITHUB_FIXTURES.glob("*/*.json"))
    return files or [GITHUB_FIXTURES / "<missing>" / "<missing>.json"]


def _require_fixtures() -> None:
    if not GITHUB_FIXTURES.is_dir() or not any(GITHUB_FIXTURES.glob("*/*.json")):
        pytest.fail(
            f"GitHub fixtures not found at {GITHUB_FIXTURES}: the shared/ directory must sit "
            "beside the repository (shared/fixtures/github/<event>/*.json)",
            pytrace=False,
        )


def _fixture(event: str, name: str) -> bytes:
    _require_fixtures()
    path = GITHUB_FIXTURES / event / name
    if not path.is_file():
        pytest.fail(f"GitHub fixture {path} is missing", pytrace=False)
    return path.read_bytes()


def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


VALIDATOR = _validator()


def _sign(body: bytes, secret: str = SECRET, *, algorithm: str = "sha256") -> str:
    return f"{algorithm}=" + hmac.new(secret.encode(), body, algorithm).hexdigest()


def _headers(
    body: bytes,
    event: str,
    *,
    delivery: str = DELIVERY,
    content_type: str = JSON_TYPE,
    signature: str | None = None,
) -> dict[str, str]:
    """Headers as ingress hands them over: names in lower case, signed with SECRET."""
    return {
        "x-hub-signature-256": _sign(body) if signature is None else signature,
        "x-github-event": event,
        "x-github-delivery": delivery,
        "content-type": content_type,
        "user-agent": "GitHub-Hookshot/044aadd",
    }


def _verify(
    body: bytes, headers: dict[str, str], secret: Secret | None = CONFIGURED_SECRET
) -> Verdict:
    clock = FakeClock()
    request = HookRequest(source="github", headers=headers, body=body, received_at=clock.now())
    return GitHubSource().verify(request, secret, clock)


def _normalize(body: bytes, headers: dict[str, str], delivery: str) -> list[Event]:
    clock = FakeClock()
    raw = RawEvent(
        id="raw-1",
        source="github",
        provider_delivery_id=delivery,
        headers=headers,
        body=body,
        received_at=clock.now(),
    )
    return GitHubSource().normalize(raw, NormalizeContext(clock=FakeClock()))


def _receive(
    body: bytes, event: str, *, delivery: str = DELIVERY, content_type: str = JSON_TYPE
) -> list[Event]:
    """Verify as ingress does, then normalize the stored request as the worker does."""
    headers = _headers(body, event, delivery=delivery, content_type=content_type)
    verdict = _verify(body, headers)
    assert verdict.provider_delivery_id == delivery
    assert verdict.store
    return _normalize(body, headers, verdict.provider_delivery_id)


def _one(body: bytes, event: str) -> dict[str, Any]:
    events = _receive(body, event)
    assert len(events) == 1
    return events[0].to_dict()


def _schema_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in VALIDATOR.iter_errors(document)
    ]


# --- every fixture -----------------------------------------------------------------------


def test_shared_github_fixtures_are_present() -> None:
    _require_fixtures()
    events = {p.parent.name for p in _fixture_files()}
    assert {"issues", "pull_request", "push", "release", "ping", "workflow_run"} <= events


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_verifies_and_normalizes_to_a_schema_valid_event(path: Path) -> None:
    _require_fixtures()
    body = path.read_bytes()
    event_name = path.parent.name
    payload = json.loads(body)

    events = _receive(body, event_name)

    assert events, f"{event_name}/{path.name} produced no event"
    action = payload.get("action")
    expected_type = f"github.{event_name}.{action}" if action else f"github.{event_name}"
    repository = payload.get("repository")
    for event in events:
        document = event.to_dict()
        assert _schema_errors(document) == []
        json.dumps(document, allow_nan=False)  # plain JSON, as rules and the store see it
        assert document["type"] == expected_type
        if isinstance(repository, dict):
            assert document["source"] == f"github/{repository['full_name']}"
        assert document["data"]["raw"] == payload


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_event_id_is_stable_per_provider_delivery_id_and_differs_between_deliveries(
    path: Path,
) -> None:
    _require_fixtures()
    body = path.read_bytes()
    event_name = path.parent.name

    first = [e.id for e in _receive(body, event_name, delivery=DELIVERY)]
    replay = [e.id for e in _receive(body, event_name, delivery=DELIVERY)]
    other = [e.id for e in _receive(body, event_name, delivery=OTHER_DELIVERY)]

    assert first == replay
    assert set(first).isdisjoint(other)


# --- what specific events carry ----------------------------------------------------------


def test_issue_opened_names_the_issue_its_author_and_its_labels() -> None:
    event = _one(_fixture("issues", "opened.json"), "issues")

    assert event["type"] == "github.issues.opened"
    assert event["source"] == "github/Codertocat/Hello-World"
    assert event["subject"] == "issues/1"
    assert event["time"] == "2019-05-15T15:20:18Z"
    data = event["data"]
    assert data["entity"] == {
        "kind": "issue",
        "id": "Codertocat/Hello-World#1",
        "url": "https://github.com/Codertocat/Hello-World/issues/1",
        "title": "Spelling error in the README file",
    }
    assert data["actor"] == {"id": "21031067", "name": "Codertocat", "email": None}
    assert data["changes"] == {}
    fields = data["fields"]
    assert fields["number"] == 1
    assert fields["repository"] == "Codertocat/Hello-World"
    assert fields["labels"] == ["bug"]
    assert fields["state"] == "open"
    assert fields["author"] == "Codertocat"
    assert fields["assignees"] == ["Codertocat"]
    assert fields["milestone"] == "v1.0"


def test_pull_request_closed_without_merge_says_merged_false() -> None:
    event = _one(_fixture("pull_request", "closed.json"), "pull_request")

    assert event["type"] == "github.pull_request.closed"
    assert event["subject"] == "pull_requests/2"
    entity = event["data"]["entity"]
    assert entity["kind"] == "pull_request"
    assert entity["id"] == "Codertocat/Hello-World#2"
    assert entity["url"] == "https://github.com/Codertocat/Hello-World/pull/2"
    fields = event["data"]["fields"]
    assert fields["merged"] is False
    assert fields["state"] == "closed"
    assert fields["number"] == 2
    assert (fields["base"], fields["head"]) == ("master", "changes")


def test_push_of_a_tag_ref_is_a_tag_entity_with_the_full_ref_in_fields() -> None:
    event = _one(_fixture("push", "default.json"), "push")

    assert event["type"] == "github.push"
    assert event["subject"] == "refs/tags/simple-tag"
    entity = event["data"]["entity"]
    assert entity["kind"] == "tag"
    assert entity["id"] == "Codertocat/Hello-World@refs/tags/simple-tag"
    assert entity["title"] == "simple-tag"
    fields = event["data"]["fields"]
    assert fields["ref"] == "refs/tags/simple-tag"
    assert fields["tag"] == "simple-tag"
    assert fields["branch"] is None
    assert fields["deleted"] is True
    assert fields["commit_count"] == 0
    # No head commit (the tag was deleted): the time is when the hub received it.
    assert event["time"] == "2026-11-21T10:00:00Z"


def test_push_to_a_branch_is_a_branch_entity_timed_by_its_head_commit() -> None:
    event = _one(_fixture("push", "with-new-branch.json"), "push")

    assert event["data"]["entity"]["kind"] == "branch"
    assert event["data"]["entity"]["title"] == "master"
    fields = event["data"]["fields"]
    assert fields["ref"] == "refs/heads/master"
    assert fields["branch"] == "master"
    assert fields["tag"] is None
    assert fields["created"] is True
    assert event["time"] == "2019-05-15T15:19:25Z"


def test_release_published_names_the_release_by_its_tag() -> None:
    event = _one(_fixture("release", "published.json"), "release")

    assert event["type"] == "github.release.published"
    entity = event["data"]["entity"]
    assert entity["kind"] == "release"
    assert entity["title"] == "0.0.1"  # the release has an empty name
    assert entity["url"] == "https://github.com/Codertocat/Hello-World/releases/tag/0.0.1"
    fields = event["data"]["fields"]
    assert fields["tag"] == "0.0.1"
    assert fields["prerelease"] is False
    assert fields["draft"] is False


def test_workflow_run_completed_carries_its_conclusion() -> None:
    event = _one(_fixture("workflow_run", "completed.json"), "workflow_run")

    assert event["type"] == "github.workflow_run.completed"
    assert event["source"] == "github/octo-org/octo-repo"
    assert event["data"]["entity"]["kind"] == "workflow_run"
    fields = event["data"]["fields"]
    assert fields["conclusion"] == "success"
    assert fields["status"] == "completed"
    assert fields["workflow"] == "test"
    assert fields["branch"] == "master"


def test_pull_request_review_submitted_is_a_review_of_the_pull_request() -> None:
    event = _one(_fixture("pull_request_review", "submitted.json"), "pull_request_review")

    assert event["type"] == "github.pull_request_review.submitted"
    assert event["subject"] == "reviews/237895671"
    assert event["time"] == "2019-05-15T15:20:38Z"
    entity = event["data"]["entity"]
    assert entity["kind"] == "review"
    assert entity["id"] == "237895671"
    assert entity["title"] == "Update the README with new information."
    assert entity["url"] == (
        "https://github.com/Codertocat/Hello-World/pull/2#pullrequestreview-237895671"
    )
    fields = event["data"]["fields"]
    assert fields["review_state"] == "commented"
    assert fields["number"] == 2


def test_issue_comment_created_is_a_comment_with_its_body_and_issue() -> None:
    event = _one(_fixture("issue_comment", "created.json"), "issue_comment")

    assert event["type"] == "github.issue_comment.created"
    entity = event["data"]["entity"]
    assert entity["kind"] == "comment"
    assert entity["id"] == "492700400"
    assert entity["title"] == "Spelling error in the README file"
    assert entity["url"] == (
        "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400"
    )
    fields = event["data"]["fields"]
    assert fields["comment"] == "You are totally right! I'll get this fixed right away."
    assert fields["number"] == 1


def test_ping_is_a_hook_event_without_an_action() -> None:
    event = _one(_fixture("ping", "default.json"), "ping")

    assert event["type"] == "github.ping"
    assert event["source"] == "github/Octocoders/Hello-World"
    assert event["subject"] == "hooks/109948940"
    assert event["data"]["entity"] == {
        "kind": "hook",
        "id": "109948940",
        "url": "https://github.com/Octocoders/Hello-World",
        "title": "Anything added dilutes everything else.",
    }
    assert event["data"]["fields"]["action"] is None


def test_issue_edited_without_changes_has_no_changes() -> None:
    event = _one(_fixture("issues", "edited.json"), "issues")

    assert event["type"] == "github.issues.edited"
    assert event["data"]["changes"] == {}


def test_issue_edited_maps_each_change_to_from_and_to() -> None:
    # Given the real issues/edited payload with `changes` as GitHub documents them
    # (https://docs.github.com/en/webhooks/webhook-events-and-payloads?actionType=edited#issues)
    payload = json.loads(_fixture("issues", "edited.json"))
    payload["changes"] = {
        "title": {"from": "Speling error in the README file"},
        "body": {"from": "It looks like you spelled 'commit' wrong."},
    }
    body = json.dumps(payload).encode()

    event = _one(body, "issues")

    assert event["data"]["changes"] == {
        "title": {
            "from": "Speling error in the README file",
            "to": "Spelling error in the README file",
        },
        "body": {
            "from": "It looks like you spelled 'commit' wrong.",
            "to": "It looks like you accidently spelled 'commit' with two 't's.",
        },
    }
    assert _schema_errors(event) == []


def test_issue_comment_edited_maps_the_body_change_to_the_new_comment_body() -> None:
    event = _one(_fixture("issue_comment", "edited.json"), "issue_comment")

    assert event["data"]["changes"] == {
        "body": {
            "from": "You are totally right! I'll get this fixed right away.",
            "to": "You are totally right! I'll get this fixed today.",
        }
    }


def test_repository_edited_change_takes_its_new_value_from_the_repository() -> None:
    body = _fixture("repository", "edited.with-default_branch-edit.json")

    event = _one(body, "repository")

    assert event["data"]["changes"] == {"default_branch": {"from": "main", "to": "master"}}


def test_change_that_states_its_new_value_keeps_it() -> None:
    # GitHub sends both ends for some changes, e.g. member.edited `permission: {from, to}`.
    payload = json.loads(_fixture("member", "edited.json"))
    payload["changes"] = {"permission": {"from": "write", "to": "admin"}}

    event = _one(json.dumps(payload).encode(), "member")

    assert event["data"]["changes"]["permission"] == {"from": "write", "to": "admin"}


def test_action_with_non_ascii_letters_still_gives_a_schema_valid_type() -> None:
    payload = json.loads(_fixture("issues", "opened.json"))
    payload["action"] = "réopened"

    event = _one(json.dumps(payload).encode(), "issues")

    assert event["type"] == "github.issues.r_opened"
    assert _schema_errors(event) == []


# --- form-encoded deliveries -------------------------------------------------------------


def test_form_encoded_delivery_is_accepted_and_normalizes_like_json() -> None:
    json_body = _fixture("issues", "opened.json")
    form_body = b"payload=" + urllib.parse.quote_plus(json_body.decode()).encode()

    as_json = _receive(json_body, "issues")
    as_form = _receive(form_body, "issues", content_type=FORM_TYPE)

    assert [e.to_dict() for e in as_form] == [e.to_dict() for e in as_json]


def test_form_encoded_delivery_with_an_empty_payload_is_malformed() -> None:
    body = b"payload="

    with pytest.raises(MalformedPayload):
        _verify(body, _headers(body, "issues", content_type=FORM_TYPE))


def test_form_encoded_delivery_with_invalid_utf8_is_malformed() -> None:
    body = b"payload=%7B%22action%22%3A%22%FF%22%7D"

    with pytest.raises(MalformedPayload):
        _verify(body, _headers(body, "issues", content_type=FORM_TYPE))


def test_body_labelled_as_a_form_without_payload_field_is_read_as_json() -> None:
    # curl -d labels any body as a form; admins test with curl.
    body = _fixture("ping", "default.json")

    verdict = _verify(body, _headers(body, "ping", content_type=FORM_TYPE))

    assert verdict.provider_delivery_id == DELIVERY


# --- rejections --------------------------------------------------------------------------


def test_missing_signature_is_rejected() -> None:
    body = _fixture("issues", "opened.json")
    headers = _headers(body, "issues")
    del headers["x-hub-signature-256"]

    with pytest.raises(SignatureError) as exc:
        _verify(body, headers)
    assert exc.value.status == 401


def test_signature_made_with_another_secret_is_rejected() -> None:
    body = _fixture("issues", "opened.json")

    with pytest.raises(SignatureError):
        _verify(body, _headers(body, "issues", signature=_sign(body, "wrong-secret")))


def test_signature_over_a_body_changed_by_one_byte_is_rejected() -> None:
    original = _fixture("issues", "opened.json")
    tampered = original.replace(b'"number": 1', b'"number": 7', 1)
    assert len(tampered) == len(original)
    assert sum(a != b for a, b in zip(original, tampered, strict=True)) == 1

    with pytest.raises(SignatureError):
        _verify(tampered, _headers(original, "issues"))


def test_sha1_signature_scheme_is_rejected() -> None:
    body = _fixture("issues", "opened.json")
    sha1 = _sign(body, algorithm="sha1")

    with pytest.raises(SignatureError):
        _verify(body, _headers(body, "issues", signature=sha1))


def test_sha256_signature_without_digest_is_rejected() -> None:
    body = _fixture("issues", "opened.json")

    with pytest.raises(SignatureError):
        _verify(body, _headers(body, "issues", signature="sha256="))


def test_signature_with_non_ascii_characters_is_rejected_not_crashed() -> None:
    # Ingress decodes header bytes as latin-1, so any byte can arrive here.
    body = _fixture("issues", "opened.json")

    with pytest.raises(SignatureError):
        _verify(body, _headers(body, "issues", signature="sha256=" + "é" * 64))


def test_missing_secret_rejects_every_request() -> None:
    body = _fixture("issues", "opened.json")

    with pytest.raises(SignatureError):
        _verify(body, _headers(body, "issues"), secret=None)


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    body = b"not json"

    with pytest.raises(SignatureError):
        _verify(body, _headers(body, "issues", signature=_sign(body, "wrong-secret")))


@pytest.mark.parametrize("header", ["x-github-event", "x-github-delivery"])
def test_signed_request_missing_a_github_header_is_malformed(header: str) -> None:
    body = _fixture("issues", "opened.json")
    headers = _headers(body, "issues")
    del headers[header]

    with pytest.raises(MalformedPayload) as exc:
        _verify(body, headers)
    assert exc.value.status == 400


@pytest.mark.parametrize("event", ["issues/../x", "issues opened", "", "issües"])
def test_event_header_that_is_not_an_event_name_is_malformed(event: str) -> None:
    body = _fixture("issues", "opened.json")

    with pytest.raises(MalformedPayload):
        _verify(body, _headers(body, event))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b'{"action": "opened",', "bad_json", id="invalid-json"),
        pytest.param(b'[{"action": "opened"}]', "bad_json", id="json-array"),
        pytest.param(b'"opened"', "bad_json", id="json-string"),
        pytest.param(b"", "bad_json", id="empty"),
        pytest.param(b'{"action": "op\xffened"}', "bad_encoding", id="invalid-utf8"),
        pytest.param(b'{"action": "opened", "n": NaN}', "bad_json", id="nan-literal"),
        pytest.param(b'{"action": "opened", "n": -Infinity}', "bad_json", id="infinity-literal"),
        pytest.param(b'{"action": "opened", "n": 1e999}', "bad_json", id="number-overflows"),
    ],
)
def test_signed_body_that_is_not_a_strict_json_object_is_malformed(body: bytes, code: str) -> None:
    with pytest.raises(MalformedPayload) as exc:
        _verify(body, _headers(body, "issues"))
    assert exc.value.code == code
