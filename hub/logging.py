"""Log setup with secret masking: every configured secret value is replaced before output."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from hub.secrets import MASK

#: Token shapes masked even when they are not in the config (e.g. echoed by a provider).
_TOKEN_PATTERNS = re.compile(
    r"(/api/webhooks/\d+/)[A-Za-z0-9_.-]+"  # Discord webhook tokens in URLs
    r"|(?i:(bearer|token|secret)[ =:]+)[A-Za-z0-9_.~+/-]{12,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|secret_[A-Za-z0-9]{20,}|ntn_[A-Za-z0-9]{20,}"  # Notion integration tokens
)


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret and token-shaped string in `text`."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return _TOKEN_PATTERNS.sub(lambda m: (m.group(1) or m.group(2) or "") + MASK, text)


class MaskingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record), self._secrets)


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("dramatiq").setLevel("WARNING")
