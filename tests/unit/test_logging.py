"""Secrets never reach log output, whether configured or merely token-shaped."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from hub.logging import (
    REVEAL,
    BoundIdsFilter,
    JsonMaskingFormatter,
    Masker,
    MaskingFormatter,
    Revealed,
    bind,
    bound,
    mask_text,
)


@contextmanager
def _logging_to(name: str, handler: logging.Handler) -> Iterator[logging.Logger]:
    """A logger whose records reach only `handler` (not the root's), detached afterwards."""
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)


def _masking_handler(stream: io.StringIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(message)s", ["hunter2-secret"]))
    return handler


def test_configured_secrets_are_masked_wherever_they_appear() -> None:
    text = mask_text(
        "signing with gh-secret-123 failed for url?key=gh-secret-123", ["gh-secret-123"]
    )
    assert "gh-secret-123" not in text
    assert text.count("**********") == 2


def test_token_shapes_are_masked_even_when_not_configured() -> None:
    samples = {
        "https://discord.com/api/webhooks/123456/AbCdEf_ghIJKL-mnop": "AbCdEf_ghIJKL-mnop",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload": "eyJhbGciOiJIUzI1NiJ9",
        "slack xoxb-1234567890-abcdefghij": "xoxb-1234567890-abcdefghij",
        "github ghp_0123456789abcdefghijABCDEFGHIJ": "ghp_0123456789abcdefghijABCDEFGHIJ",
        "notion ntn_0123456789abcdefghijklmnop": "ntn_0123456789abcdefghijklmnop",
        # A chat command's follow-up URLs: short-lived, but anyone holding one can post.
        "PATCH https://discord.com/api/v10/webhooks/1213445701632131072/aW50ZXJhY3Rpb246"
        "MTIzNDU2Nzg5MDpxd2VydHl1aW9w/messages/@original": "aW50ZXJhY3Rpb246MTIz",
        "POST https://hooks.slack.com/commands/T05KQ7ZT9RM/8123456789012/Zx9FixtureResponse"
        "UrlToken01 failed": "Zx9FixtureResponseUrlToken01",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX": "X" * 24,
    }
    for line, token in samples.items():
        assert token not in mask_text(line, []), line


def test_formatter_masks_messages_and_arguments() -> None:
    stream = io.StringIO()
    with _logging_to("test.masking", _masking_handler(stream)) as logger:
        logger.warning("destination %s rejected token %s", "tasks", "hunter2-secret")
    assert stream.getvalue() == "destination tasks rejected token **********\n"


def test_json_lines_carry_the_bound_ids_and_stay_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(BoundIdsFilter())
    handler.setFormatter(JsonMaskingFormatter(["hunter2-secret"]))
    with _logging_to("test.json", handler) as logger:
        with bound(event_id="evt-1"), bound(delivery_id="dlv-2"):
            logger.warning("sending with %s", "hunter2-secret")
        logger.warning("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["event_id"] == "evt-1"
    assert inside["delivery_id"] == "dlv-2"
    assert inside["level"] == "warning"
    assert "hunter2-secret" not in inside["message"]
    assert "event_id" not in outside


def test_an_asyncio_task_keeps_its_own_ids() -> None:
    seen: dict[str, dict[str, str]] = {}

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen[record.getMessage()] = dict(getattr(record, "ids", {}))

    logger = logging.getLogger("test.tasks")
    handler = Capture()
    handler.addFilter(BoundIdsFilter())

    async def deliver(delivery_id: str) -> None:
        bind(delivery_id=delivery_id)
        await asyncio.sleep(0)
        logger.warning(delivery_id)

    async def both() -> None:
        await asyncio.gather(deliver("a"), deliver("b"))

    with _logging_to("test.tasks", handler):
        asyncio.run(both())
    assert seen == {"a": {"delivery_id": "a"}, "b": {"delivery_id": "b"}}


def test_a_revealed_record_keeps_token_shapes_but_never_configured_secrets() -> None:
    stream = io.StringIO()
    token = "secret_fixtureVerificationToken0123456789abcdef"
    with _logging_to("test.reveal", _masking_handler(stream)) as logger:
        logger.warning("paste %s (not %s)", token, "hunter2-secret", extra=REVEAL)
        logger.warning("paste %s", token)
    revealed, ordinary = stream.getvalue().splitlines()
    assert token in revealed
    assert "hunter2-secret" not in revealed
    assert token not in ordinary


def test_the_masker_turns_lone_surrogates_into_replacement_characters() -> None:
    # Rows stored before sources replaced them still hold them; responses must encode.
    masked = Masker(["gh-secret-123"])(
        {"t\udc00": ["\ud800 gh-secret-123", Revealed("x\udfff")], "n": 1, "s": {"secret": True}}
    )

    assert masked == {"t\ufffd": ["\ufffd **********", "x\ufffd"], "n": 1, "s": {"secret": True}}
    json.dumps(masked, ensure_ascii=False).encode("utf-8")


#: Every character a URL-safe or standard base64 token, or a percent-encoded one, may hold.
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=:%2B%3D"


@pytest.mark.parametrize("char", sorted(set(TOKEN_ALPHABET)))
@pytest.mark.parametrize(
    "suffix", ["/messages/@original", "/messages/123?wait=true", "", " failed"]
)
def test_a_follow_up_token_is_masked_whole_whatever_it_holds(char: str, suffix: str) -> None:
    token = f"aW50ZXJhY3Rp{char}b246MTIz{char * 2}NDU2Nzg5"
    for version in ("v10/", ""):
        url = f"https://discord.com/api/{version}webhooks/1213445701632131072/{token}{suffix}"

        masked = mask_text(f"PATCH {url}", [])
        shown = Masker([])({"last_error": url})["last_error"]

        for text in (masked, shown):
            assert not any(part in text for part in ("aW50", "b246", "NDU2")), text
            assert "/webhooks/1213445701632131072/**********" in text, text
            assert text.endswith(f"**********{suffix}"), text
