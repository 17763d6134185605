"""Staff sign-in: password, then TOTP with replay protection; lockout and a per-email limit.

Plain functions over a session, the vault, a Redis connection and a clock; no Flask here. The
caller commits after every attempt, failed ones included, so failures and lockouts persist.

Threat model: an attacker who knows (or guesses) staff emails and tries passwords or codes.
- Every failure looks the same from outside (one message, one code path cost: an unknown
  email still pays for an argon2 verification), so the form is no oracle for who has an account.
- 5 failures (password or code) lock the account for 15 minutes, in the database, so every web
  process and every restart sees it. A per-email limit in Redis also caps attempts on emails
  that have no account or are already locked.
- A TOTP code is accepted once: its time counter must be above the last one used.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import pyotp
import redis
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tipline.models import User
from tipline.platform.ratelimit import FailureLimiter, LimiterUnavailable, Limits, RateLimited
from tipline.staff.access import actor
from tipline.staff.accounts import totp_secret
from tipline.vault import audit
from tipline.vault.keyring import Vault
from tipline.vault.passwords import hash_secret, hasher, verify_secret

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
TOTP_STEP = 30
TOTP_WINDOW = 1  # codes of the previous and next 30 s step are accepted (clock drift)
GENERIC_ERROR = (
    "Sign-in failed: check your email, password and code. "
    "After 5 failed attempts, sign-in to the account pauses for 15 minutes."
)

_DUMMY_HASHES: dict[int, str] = {}


class Outcome(Enum):
    FAILED = "failed"
    NEEDS_TOTP = "needs_totp"
    SIGNED_IN = "signed_in"


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    user: User | None = None
    throttled: bool = False


def password_fingerprint(user: User) -> str:
    """Changes whenever the password is set again (new salt), ending older sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def check_password(
    session: Session,
    vault: Vault,
    limiter: FailureLimiter | None,
    email: str,
    password: str,
    now: datetime,
) -> Attempt:
    """First step: the password. A user with TOTP enrolled gets NEEDS_TOTP, not a login."""
    email = email.strip().lower()
    ref = limiter_key(session, vault, email)
    user = session.scalars(select(User).where(User.email == email)).first()
    if _over_limit(limiter, ref):
        _burn(password)
        audit.record(
            session, actor(user) if user else "anonymous", "login.throttled", email_ref=ref[:16]
        )
        return Attempt(Outcome.FAILED, throttled=True)
    if user is None or not user.active:
        _burn(password)
        _count(limiter, ref)
        audit.record(session, "anonymous", "login.failure", step="password", email_ref=ref[:16])
        return Attempt(Outcome.FAILED)
    if is_locked(user, now):
        _burn(password)
        _count(limiter, ref)
        audit.record(session, actor(user), "login.locked", step="password")
        return Attempt(Outcome.FAILED)
    if not verify_secret(user.password_hash, password):
        _count(limiter, ref)
        _fail(session, user, now, "password")
        return Attempt(Outcome.FAILED)
    if user._totp_secret is not None:
        return Attempt(Outcome.NEEDS_TOTP, user)
    _succeed(session, user, "password")
    return Attempt(Outcome.SIGNED_IN, user)


def check_totp(
    session: Session,
    vault: Vault,
    limiter: FailureLimiter | None,
    user_id: int,
    code: str,
    now: datetime,
) -> Attempt:
    """Second step: a 6-digit code of the current step ±1 that was not used before."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return Attempt(Outcome.FAILED)
    ref = limiter_key(session, vault, user.email)
    if _over_limit(limiter, ref):
        audit.record(session, actor(user), "login.throttled", step="totp")
        return Attempt(Outcome.FAILED, throttled=True)
    if is_locked(user, now):
        audit.record(session, actor(user), "login.locked", step="totp")
        return Attempt(Outcome.FAILED)
    secret = totp_secret(vault, user)
    counter = None if secret is None else matching_counter(secret, code, now)
    if counter is None:
        _count(limiter, ref)
        _fail(session, user, now, "totp")
        return Attempt(Outcome.FAILED)
    # Compare-and-set in one statement, so two requests racing with one code cannot both win.
    claimed = session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.last_totp_counter.is_(None), User.last_totp_counter < counter),
        )
        .values(last_totp_counter=counter)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        _count(limiter, ref)
        _fail(session, user, now, "totp", replay=True)
        return Attempt(Outcome.FAILED)
    session.refresh(user)
    _succeed(session, user, "totp")
    return Attempt(Outcome.SIGNED_IN, user)


def matching_counter(secret: str, code: str, now: datetime) -> int | None:
    """The time-step counter whose code equals `code`, within ±TOTP_WINDOW steps, or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP)
    current = int(now.timestamp()) // TOTP_STEP
    found = None
    for counter in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(str(totp.generate_otp(counter)), code):
            found = counter  # no early exit: the same work whatever matched
    return found


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def _fail(session: Session, user: User, now: datetime, step: str, replay: bool = False) -> None:
    # An atomic increment: parallel guesses cannot slip past the lockout by racing each other.
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=User.failed_logins + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user)
    if user.failed_logins >= MAX_FAILURES:
        user.failed_logins, user.locked_until = 0, now + LOCKOUT
        audit.record(session, actor(user), "login.lockout", step=step, minutes=15)
    else:
        audit.record(session, actor(user), "login.failure", step=step, replay=replay)


def _succeed(session: Session, user: User, step: str) -> None:
    user.failed_logins, user.locked_until = 0, None
    audit.record(session, actor(user), "login.success", step=step)


def _burn(password: str) -> None:
    """Spend what a real verification costs, so timing does not tell which emails exist."""
    key = id(hasher())
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hash_secret("not-a-real-password-0000")
    verify_secret(_DUMMY_HASHES[key], password)


def limiter(conn: redis.Redis) -> FailureLimiter:
    """Failed sign-ins per email (10 per 15 minutes); the overall cap is set out of reach.

    A low overall cap would let anyone lock every staff member out during an emergency by
    spraying wrong passwords; the per-account lockout and per-email limit bound guessing.
    """
    return FailureLimiter(conn, "admin-login:all", Limits(per_key=10, overall=1_000_000))


def limiter_key(session: Session, vault: Vault, email: str) -> str:
    """An opaque per-email key: Redis never holds a staff email."""
    return vault.lookup_hash(session, "ratelimit", f"admin-login:{email.strip().lower()}")


def _over_limit(limiter: FailureLimiter | None, ref: str) -> bool:
    """Redis down: allowed. The database lockout still holds meanwhile.

    Failing open is deliberate (the students' receipt check fails closed): staff must reach
    critical tips during a Redis outage, and the per-account lockout in the database keeps
    guessing at 5 tries per 15 minutes per account.
    """
    if limiter is None:
        return False
    try:
        limiter.check("admin-login:" + ref)
    except RateLimited:
        return True
    except LimiterUnavailable:
        log.warning("login rate limit unavailable (Redis down); relying on account lockout")
    return False


def _count(limiter: FailureLimiter | None, ref: str) -> None:
    if limiter is None:
        return
    try:
        limiter.record_failure("admin-login:" + ref)
    except LimiterUnavailable:
        log.warning("login rate limit unavailable (Redis down); relying on account lockout")
