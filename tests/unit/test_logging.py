"""Secrets never reach log output, whether configured or merely token-shaped."""

from __future__ import annotations

import io
import logging

from hub.logging import MaskingFormatter, mask_text


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
    }
    for line, token in samples.items():
        assert token not in mask_text(line, []), line


def test_formatter_masks_messages_and_arguments() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(message)s", ["hunter2-secret"]))
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("destination %s rejected token %s", "tasks", "hunter2-secret")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "destination tasks rejected token **********\n"
