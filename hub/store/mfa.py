"""Second-factor rows: a user's TOTP secret (sealed with the store cipher) and the hashes
of their one-time recovery codes.

Both "use once" checks are single conditional statements, so two hub processes racing
with the same code cannot both accept it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, or_, select, update

from hub.store.store import Store
from hub.store.tables import mfa_recovery_codes, mfa_totp


@dataclass(frozen=True, slots=True)
class Totp:
    username: str
    secret: str
    confirmed: bool


def get_totp(store: Store, username: str) -> Totp | None:
    with store.guard("read a second factor"), store.engine.connect() as conn:
        row = conn.execute(
            select(mfa_totp.c.secret, mfa_totp.c.confirmed_at).where(
                mfa_totp.c.username == username
            )
        ).first()
    if row is None:
        return None
    return Totp(username, store.cipher.open(row.secret), row.confirmed_at is not None)


def begin_enrollment(store: Store, username: str, secret: str, *, now: float) -> bool:
    """Keep `secret` as the user's unconfirmed secret; False if one is confirmed already."""
    with store.guard("start a second-factor enrollment"), store.engine.begin() as conn:
        conn.execute(
            delete(mfa_totp).where(
                mfa_totp.c.username == username, mfa_totp.c.confirmed_at.is_(None)
            )
        )
        if conn.execute(select(mfa_totp.c.username).where(mfa_totp.c.username == username)).first():
            return False
        conn.execute(
            insert(mfa_totp).values(
                username=username, secret=store.cipher.seal(secret), created_at=now
            )
        )
    return True


def confirm_enrollment(
    store: Store, username: str, *, step: int, code_hashes: Iterable[str], now: float
) -> bool:
    """Confirm the pending secret (its first code was `step`) and keep the recovery hashes."""
    with store.guard("confirm a second factor"), store.engine.begin() as conn:
        done = conn.execute(
            update(mfa_totp)
            .where(mfa_totp.c.username == username, mfa_totp.c.confirmed_at.is_(None))
            .values(confirmed_at=now, last_step=step)
        ).rowcount
        if done != 1:
            return False
        conn.execute(delete(mfa_recovery_codes).where(mfa_recovery_codes.c.username == username))
        conn.execute(
            insert(mfa_recovery_codes),
            [{"username": username, "code_hash": h, "created_at": now} for h in code_hashes],
        )
    return True


def claim_step(store: Store, username: str, step: int) -> bool:
    """Accept the code of `step` once: False if that step (or a later one) was used."""
    with store.guard("check a second factor"), store.engine.begin() as conn:
        done = conn.execute(
            update(mfa_totp)
            .where(
                mfa_totp.c.username == username,
                mfa_totp.c.confirmed_at.is_not(None),
                or_(mfa_totp.c.last_step.is_(None), mfa_totp.c.last_step < step),
            )
            .values(last_step=step)
        ).rowcount
    return bool(done == 1)


def use_recovery_code(store: Store, username: str, code_hash: str) -> bool:
    """Consume a recovery code: True only for the first use of a code the user holds."""
    with store.guard("use a recovery code"), store.engine.begin() as conn:
        done = conn.execute(
            delete(mfa_recovery_codes).where(
                mfa_recovery_codes.c.username == username,
                mfa_recovery_codes.c.code_hash == code_hash,
            )
        ).rowcount
    return bool(done == 1)


def recovery_codes_left(store: Store, username: str) -> int:
    with store.guard("count recovery codes"), store.engine.connect() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(mfa_recovery_codes)
            .where(mfa_recovery_codes.c.username == username)
        ).scalar_one()
    return int(count)
