"""Staff sessions kept in the database, so signing out (here or everywhere) really ends them.

The browser holds a random token (in the signed session cookie); the table holds its SHA-256,
the login, when it started, when it was last seen and when it was revoked. A copied cookie
stops working the moment its row is revoked, and a database dump holds no usable token.
Plain rows and strings: nothing is unpickled, and Redis plays no part (staff must reach
critical tips while Redis is down).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from tipline.models import StaffSession, User

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)  # a working day at most, however active
# last_seen is written at most once a minute: not a write per page, and the idle timeout is
# still kept to the minute.
TOUCH_EVERY = timedelta(seconds=60)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: User, now: datetime) -> str:
    """A new session for `user`; returns the token for the cookie (never stored)."""
    # Rows past the absolute limit can never be used again: forget this login's old ones.
    session.execute(
        delete(StaffSession).where(
            StaffSession.user_id == user.id, StaffSession.created_at < now - ABSOLUTE
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(id=digest(token), user_id=user.id, created_at=now, last_seen_at=now))
    return token


def resolve(
    session: Session, token: str, now: datetime, *, touch: bool = True
) -> tuple[User | None, bool]:
    """The login this token signs in, or None; and whether last_seen was written (commit it).

    `touch=False` for requests no person made, such as the open queue's poll every few seconds:
    they are answered but are not activity, or a queue left open would keep its session alive
    forever and the idle timeout would never end it."""
    row = session.get(StaffSession, digest(token))
    if row is None or row.revoked_at is not None:
        return None, False
    if now - row.created_at > ABSOLUTE or now - row.last_seen_at > IDLE:
        return None, False
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None, False
    touched = touch and now - row.last_seen_at >= TOUCH_EVERY
    if touched:
        row.last_seen_at = now
    return user, touched


def revoke(session: Session, token: str, now: datetime) -> None:
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == digest(token), StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def revoke_all(session: Session, user_id: int, now: datetime) -> int:
    """End every session of a login ("sign out everywhere", a new password, a reset)."""
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
