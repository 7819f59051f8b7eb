"""Encryption of tokens the hub stores itself (Fernet keys from `store.encryption_keys`).

Only named fields of stored documents are sealed (SEALED_FIELDS: verification tokens,
sync tokens, OAuth tokens), so a row stays readable JSON with its secrets replaced by
`fernet:<token>`. The first key encrypts and every key decrypts (MultiFernet), which is
how keys rotate: put the new key first everywhere, run `switchboard secrets rotate`
(it re-encrypts every sealed value under the new key while the hub runs), then drop the
old key. A value written before encryption was configured is read as it is and sealed by
the next write or by `secrets rotate`. The keys' format is checked when the config loads
(`hub.config.check_key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub.errors import StoreError
from hub.secrets import Secret

#: Document fields whose string values are sealed, wherever they sit in the document.
SEALED_FIELDS = frozenset(
    {"notice", "token", "sync_token", "channel_token", "access_token", "refresh_token"}
)
MARK = "fernet:"


def new_key() -> str:
    return Fernet.generate_key().decode()


class TokenCipher:
    """Seals and opens stored token fields; with no keys it stores them as they are."""

    def __init__(self, keys: Sequence[Secret] = ()) -> None:
        self._fernet = MultiFernet([Fernet(k.reveal().encode()) for k in keys]) if keys else None

    @property
    def is_enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None or value.startswith(MARK):
            return value
        return MARK + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(MARK):
            return value  # stored before encryption was turned on
        if self._fernet is None:
            raise StoreError(
                "the store holds encrypted tokens but store.encryption_keys is not set; "
                "configure the keys they were written with"
            )
        try:
            return self._fernet.decrypt(value.removeprefix(MARK).encode()).decode()
        except InvalidToken:
            raise StoreError(
                "a stored token was encrypted with a key not in store.encryption_keys; "
                "add the key it was written with (old keys stay until `secrets rotate`)"
            ) from None

    def rotate(self, value: str) -> str:
        """`value` sealed under the first key (plain values get sealed)."""
        if self._fernet is None:
            return value
        if not value.startswith(MARK):
            return self.seal(value)
        try:
            return MARK + self._fernet.rotate(value.removeprefix(MARK).encode()).decode()
        except InvalidToken:
            raise StoreError(
                "a stored token was encrypted with a key not in store.encryption_keys; "
                "keep the old key listed (after the new one) until the rotation is done"
            ) from None

    def seal_bytes(self, body: bytes) -> bytes:
        """A raw body sealed (`fernet:` + token, ASCII); as it is without keys."""
        if self._fernet is None:
            return body
        return MARK.encode() + self._fernet.encrypt(body)

    def open_bytes(self, body: bytes) -> bytes:
        """A raw body as received, whether it was stored sealed or not."""
        mark = MARK.encode()
        if not body.startswith(mark):
            return body
        if self._fernet is None:
            raise StoreError(
                "the store holds encrypted request bodies but store.encryption_keys is not "
                "set; configure the keys they were written with"
            )
        try:
            return self._fernet.decrypt(body[len(mark) :])
        except InvalidToken:
            raise StoreError(
                "a stored request body was encrypted with a key not in store.encryption_keys"
            ) from None

    def seal_credentials(self, doc: Any) -> tuple[Any, frozenset[str]]:
        """`doc` with the credentials of its `secret: true` objects sealed (a chat command's
        follow-up URL and token), and the plain values that were sealed.

        The worker stores a normalized event this way; the values let it seal the same
        text where a rule copied it into a delivery's params (`seal_values`).
        """
        found: set[str] = set()
        if self._fernet is None:
            return doc, frozenset()
        return _seal_marked(doc, self.seal, found), frozenset(found)

    def seal_values(self, doc: Any, values: frozenset[str]) -> Any:
        """`doc` with every string equal to one of `values` sealed."""
        if self._fernet is None or not values:
            return doc
        return _replace(doc, lambda v: self.seal(v) if v in values else v)

    def open_all(self, doc: Any) -> Any:
        """`doc` with every sealed string opened, wherever it sits."""
        return _replace(doc, lambda v: self.open(v) if v.startswith(MARK) else v)

    def seal_doc(self, doc: Any) -> Any:
        return _walk(doc, self.seal)

    def open_doc(self, doc: Any) -> Any:
        return _walk(doc, self.open)

    def rotate_doc(self, doc: Any) -> Any:
        return _walk(doc, self.rotate)


#: Stores tokens as they are (no `store.encryption_keys`).
PLAIN = TokenCipher()


#: In a `secret: true` object (a chat follow-up), the fields that are credentials.
CREDENTIAL_FIELDS = frozenset({"url", "interaction_token", "response_url", "token"})


def _seal_marked(doc: Any, seal: Any, found: set[str]) -> Any:
    if isinstance(doc, dict):
        if doc.get("secret") is True:
            out = {}
            for k, v in doc.items():
                if k in CREDENTIAL_FIELDS and isinstance(v, str) and not v.startswith(MARK):
                    found.add(v)
                    out[k] = seal(v)
                else:
                    out[k] = v
            return out
        return {k: _seal_marked(v, seal, found) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_seal_marked(v, seal, found) for v in doc]
    return doc


def _replace(doc: Any, change: Any) -> Any:
    if isinstance(doc, str):
        return change(doc)
    if isinstance(doc, dict):
        return {k: _replace(v, change) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_replace(v, change) for v in doc]
    return doc


def _walk(doc: Any, change: Any) -> Any:
    if isinstance(doc, dict):
        return {
            k: change(v) if k in SEALED_FIELDS and isinstance(v, str) else _walk(v, change)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_walk(v, change) for v in doc]
    return doc
