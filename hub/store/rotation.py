"""Re-encrypt every sealed token in the store under the cipher's first key (`secrets rotate`).

Runs beside a live hub: each row is rewritten only if it is unchanged since it was read
(same `updated_at`, under the key's write lock that shared-state writers also take), so a
document the hub wrote meanwhile is read again instead of being overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from hub.store.crypto import MARK, SEALED_FIELDS, TokenCipher
from hub.store.store import Store
from hub.store.tables import mfa_totp, snapshots

#: Rows read per statement while looking for sealed fields.
PAGE = 500
#: Times a row the hub keeps rewriting is read again before it is reported as skipped.
TRIES = 5


@dataclass(frozen=True, slots=True)
class Rotated:
    rewritten: int
    #: Keys the hub rewrote on every try; run the rotation again.
    busy: tuple[str, ...]


def rotate_tokens(store: Store, cipher: TokenCipher) -> Rotated:
    """Seal every token field of every stored document, and every TOTP secret, under
    `cipher`'s first key."""
    rewritten, busy = _rotate_totp_secrets(store, cipher), []
    for key in _candidate_keys(store):
        for _ in range(TRIES):
            outcome = _rotate_one(store, cipher, key)
            if outcome is not None:
                rewritten += outcome
                break
        else:
            busy.append(key)
    return Rotated(rewritten, tuple(busy))


def _rotate_totp_secrets(store: Store, cipher: TokenCipher) -> int:
    """Re-seal each user's TOTP secret; a row whose secret changed meanwhile (the user
    enrolled again) is left as the hub wrote it."""
    rewritten = 0
    with store.guard("list second factors"), store.engine.connect() as conn:
        rows = conn.execute(select(mfa_totp.c.username, mfa_totp.c.secret)).all()
    for username, secret in rows:
        rotated = cipher.rotate(secret)
        if rotated == secret:
            continue
        with store.guard("rewrite a second factor"), store.engine.begin() as conn:
            done = conn.execute(
                update(mfa_totp)
                .where(mfa_totp.c.username == username, mfa_totp.c.secret == secret)
                .values(secret=rotated)
            )
            rewritten += done.rowcount
    return rewritten


def _candidate_keys(store: Store) -> list[str]:
    """Keys of documents that may hold a token field (a cheap text test, then exact)."""
    keys: list[str] = []
    after = ""
    with store.guard("list stored documents"), store.engine.connect() as conn:
        while True:
            rows = conn.execute(
                select(snapshots.c.key, snapshots.c.doc)
                .where(snapshots.c.key > after)
                .order_by(snapshots.c.key)
                .limit(PAGE)
            ).all()
            if not rows:
                return keys
            for key, doc in rows:
                if _has_sealed_field(doc):
                    keys.append(key)
            after = rows[-1][0]


def _rotate_one(store: Store, cipher: TokenCipher, key: str) -> int | None:
    """1 if rewritten, 0 if nothing to do, None if the row changed under us."""
    with store.guard("read a stored document"), store.engine.connect() as conn:
        row = conn.execute(
            select(snapshots.c.doc, snapshots.c.updated_at).where(snapshots.c.key == key)
        ).first()
    if row is None:
        return 0
    doc, seen = row
    rotated = cipher.rotate_doc(doc)
    if rotated == doc:
        return 0
    with store.guard("rewrite a stored document"), store.keyed_write(key) as conn:
        done = conn.execute(
            update(snapshots)
            .where(snapshots.c.key == key, snapshots.c.updated_at == seen)
            .values(doc=rotated)
        )
        return 1 if done.rowcount == 1 else None


def _has_sealed_field(doc: object) -> bool:
    if isinstance(doc, dict):
        return any(
            (k in SEALED_FIELDS and isinstance(v, str)) or _has_sealed_field(v)
            for k, v in doc.items()
        )
    if isinstance(doc, list):
        return any(_has_sealed_field(v) for v in doc)
    return False


__all__ = ["MARK", "Rotated", "rotate_tokens"]
