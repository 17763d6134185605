"""Staff sign-in: password, then a second factor (TOTP or a recovery code), with growing delays.

Plain functions over a session, the vault and a clock; no Flask here, and no Redis: sign-in
works while Redis is down. The caller commits after every attempt, failed ones included.

Threat model: an attacker who knows staff emails (a school's directory is public) and tries
passwords or codes, from one address or from many.
- Every failure looks the same from outside (one message; an unknown email still pays for an
  argon2 verification), so the form is no oracle for who has an account.
- There is no lock on an account: a lock that refuses the right password lets anyone who knows
  an email keep that person out during an emergency. Instead each failure delays the client
  address it came from: the first FREE_FAILURES are free, then the delay doubles from 1 s up to
  ADDRESS_CAP. An attempt from an address inside its delay is refused unchecked.
- Failures also count per account, from any address: once an account has had FREE_FAILURES,
  every address that fails on it waits at least the account's own growing delay (up to
  ACCOUNT_CAP), so spreading guesses over many addresses does not buy speed for long.
- The real user, from an address the attacker is not using, is never delayed: the right
  password and the right code always get in. (Someone sharing the attacker's address, behind
  one NAT, waits out that address's delay.)
- Counts lapse FORGET_AFTER the last failure; a full sign-in clears its address's count.
- A TOTP code is accepted once: its time counter must be above the last one used. A recovery
  code is accepted once.
- The client address is stored only as a keyed hash, and only here: tips never see it.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import pyotp
from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tipline.models import SigninAddress, User
from tipline.staff import accounts
from tipline.staff.access import actor
from tipline.vault import audit
from tipline.vault.keyring import Vault
from tipline.vault.passwords import hash_secret, hasher, verify_secret

FREE_FAILURES = 3
ADDRESS_CAP = timedelta(minutes=15)
ACCOUNT_CAP = timedelta(minutes=5)
FORGET_AFTER = timedelta(hours=24)
TOTP_STEP = 30
TOTP_WINDOW = 1  # codes of the previous and next 30 s step are accepted (clock drift)
GENERIC_ERROR = "Sign-in failed: check your email, password and code."
DELAYED_ERROR = "Too many failed sign-ins from this network: try again in {seconds} seconds."

_DUMMY_HASHES: dict[int, str] = {}


class Outcome(Enum):
    FAILED = "failed"
    DELAYED = "delayed"
    NEEDS_TOTP = "needs_totp"
    NEEDS_ENROLLMENT = "needs_enrollment"
    SIGNED_IN = "signed_in"
    CONFIRMED = "confirmed"  # a code confirmed an action of a signed-in login


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    user: User | None = None
    retry_after: int = 0
    recovery_codes: tuple[str, ...] = ()


def check_password(
    session: Session,
    vault: Vault,
    email: str,
    password: str,
    address: str | None,
    now: datetime,
    *,
    second_factor: bool = True,
) -> Attempt:
    """First step. Right password: NEEDS_TOTP when enrolled, else NEEDS_ENROLLMENT (or
    SIGNED_IN when `second_factor` is False, which only `tipline dev` asks for)."""
    key = address_key(session, vault, address)
    delayed = _delayed(session, key, now)
    if delayed is not None:
        return delayed
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.active:
        _burn(password)
        _fail(session, None, key, now, "password")
        return Attempt(Outcome.FAILED)
    if not verify_secret(user.password_hash, password):
        _fail(session, user, key, now, "password")
        return Attempt(Outcome.FAILED)
    if accounts.has_second_factor(user):
        return Attempt(Outcome.NEEDS_TOTP, user)
    if second_factor:
        # A secret shown after an earlier password step (perhaps to someone else who knew the
        # password) is never the one enrolled: each password step gets a fresh one.
        user._totp_pending = None
        return Attempt(Outcome.NEEDS_ENROLLMENT, user)
    _succeed(session, user, key, "password")
    return Attempt(Outcome.SIGNED_IN, user)


def check_code(
    session: Session,
    vault: Vault,
    user_id: int,
    code: str,
    address: str | None,
    now: datetime,
) -> Attempt:
    """Second step: a 6-digit TOTP code of the current step ±1 not used before, or an unused
    recovery code."""
    key = address_key(session, vault, address)
    delayed = _delayed(session, key, now)
    if delayed is not None:
        return delayed
    user = session.get(User, user_id)
    secret = None if user is None or not user.active else accounts.totp_secret(vault, user)
    if user is None or secret is None:
        return Attempt(Outcome.FAILED)
    if accounts.normalize_recovery_code(code) is not None:
        return _recovery_code(session, user, key, code, now)
    return _totp_code(session, user, key, secret, code, now)


def _recovery_code(
    session: Session, user: User, key: str | None, code: str, now: datetime
) -> Attempt:
    if not accounts.use_recovery_code(session, user, code, now):
        _fail(session, user, key, now, "recovery_code")
        return Attempt(Outcome.FAILED)
    left = accounts.recovery_codes_left(session, user)
    _succeed(session, user, key, "recovery_code", recovery_codes_left=left)
    return Attempt(Outcome.SIGNED_IN, user)


def _totp_code(
    session: Session, user: User, key: str | None, secret: str, code: str, now: datetime
) -> Attempt:
    if not _claim_totp(session, user, key, secret, code, now, "totp"):
        return Attempt(Outcome.FAILED)
    _succeed(session, user, key, "totp")
    return Attempt(Outcome.SIGNED_IN, user)


def _claim_totp(
    session: Session,
    user: User,
    key: str | None,
    secret: str,
    code: str,
    now: datetime,
    step: str,
) -> bool:
    """True when `code` is valid now and newer than the last code used; counts a failure."""
    counter = matching_counter(secret, code, now)
    if counter is None:
        _fail(session, user, key, now, step)
        return False
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
        _fail(session, user, key, now, step, replay=True)
        return False
    session.refresh(user)
    return True


def renew_recovery_codes(
    session: Session,
    vault: Vault,
    user: User,
    code: str,
    address: str | None,
    now: datetime,
) -> Attempt:
    """Ten new recovery codes for a signed-in login (the old ones stop working), against a
    current TOTP code: a browser left signed in cannot mint itself a way back in."""
    key = address_key(session, vault, address)
    delayed = _delayed(session, key, now)
    if delayed is not None:
        return delayed
    secret = accounts.totp_secret(vault, user)
    if secret is None or not _claim_totp(session, user, key, secret, code, now, "renew"):
        return Attempt(Outcome.FAILED)
    codes = accounts.new_recovery_codes(session, user)
    audit.record(session, actor(user), "recovery_codes.renewed")
    return Attempt(Outcome.CONFIRMED, user, recovery_codes=tuple(codes))


def enrollment_secret(session: Session, vault: Vault, user_id: int) -> tuple[User, str] | None:
    """The login and the secret its enrollment page shows, or None when it cannot enroll."""
    user = session.get(User, user_id)
    if user is None or not user.active or accounts.has_second_factor(user):
        return None
    return user, accounts.pending_totp_secret(vault, user)


def confirm_enrollment(
    session: Session,
    vault: Vault,
    user_id: int,
    code: str,
    address: str | None,
    now: datetime,
) -> Attempt:
    """A code from the new authenticator enrolls it and signs in; the recovery codes come back
    once, in the Attempt, to be shown and never stored in the clear."""
    key = address_key(session, vault, address)
    delayed = _delayed(session, key, now)
    if delayed is not None:
        return delayed
    found = enrollment_secret(session, vault, user_id)
    if found is None:
        return Attempt(Outcome.FAILED)
    user, secret = found
    counter = matching_counter(secret, code, now)
    if counter is None:
        _fail(session, user, key, now, "enroll")
        return Attempt(Outcome.FAILED)
    accounts.confirm_totp(vault, user, counter)
    codes = accounts.new_recovery_codes(session, user)
    audit.record(session, actor(user), "totp.enrolled")
    _succeed(session, user, key, "totp")
    return Attempt(Outcome.SIGNED_IN, user, recovery_codes=tuple(codes))


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return str(
        pyotp.TOTP(secret, interval=TOTP_STEP).provisioning_uri(name=email, issuer_name="tipline")
    )


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


def delay_for(failures: int, cap: timedelta) -> timedelta:
    """0 for the first FREE_FAILURES, then 1 s, 2 s, 4 s, … up to `cap`."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    exponent = min(failures - FREE_FAILURES, 32)
    return min(timedelta(seconds=2**exponent), cap)


def address_key(session: Session, vault: Vault, address: str | None) -> str | None:
    """A keyed hash of the client address (an IPv6 address by its /64, which one host holds)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    text = str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
    return vault.lookup_hash(session, "ratelimit", f"staff-signin:{text}")


def _delayed(session: Session, key: str | None, now: datetime) -> Attempt | None:
    if key is None:
        return None
    row = session.get(SigninAddress, key)
    if row is None or row.delay_until <= now:
        return None
    wait = math.ceil((row.delay_until - now).total_seconds())
    return Attempt(Outcome.DELAYED, retry_after=max(1, wait))


def _fail(
    session: Session,
    user: User | None,
    key: str | None,
    now: datetime,
    step: str,
    replay: bool = False,
) -> None:
    account_delay = timedelta(0)
    if user is not None:
        # One statement: parallel guesses cannot slip past the count by racing each other.
        stale = or_(User.last_failed_at.is_(None), User.last_failed_at < now - FORGET_AFTER)
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                failed_logins=case((stale, 1), else_=User.failed_logins + 1),
                last_failed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        session.refresh(user)
        account_delay = delay_for(user.failed_logins, ACCOUNT_CAP)
    if key is not None:
        # The row first (a no-op when it exists: two first failures racing both succeed),
        # then locked, so parallel failures from one address each count.
        conn = session.connection()
        module = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            module.insert(SigninAddress)
            .values(key=key, failures=0, last_failed_at=now, delay_until=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = session.get(SigninAddress, key, with_for_update=True, populate_existing=True)
        assert row is not None  # noqa: S101 - inserted just above
        if row.last_failed_at < now - FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failed_at = now
        row.delay_until = now + max(delay_for(row.failures, ADDRESS_CAP), account_delay)
        session.flush()
    who = actor(user) if user is not None else "anonymous"
    audit.record(session, who, "login.failure", step=step, replay=replay)


def _succeed(session: Session, user: User, key: str | None, step: str, **detail: Any) -> None:
    if key is not None:
        row = session.get(SigninAddress, key)
        if row is not None:
            session.delete(row)
    audit.record(session, actor(user), "login.success", step=step, **detail)


def _burn(password: str) -> None:
    """Spend what a real verification costs, so timing does not tell which emails exist."""
    hkey = id(hasher())
    if hkey not in _DUMMY_HASHES:
        _DUMMY_HASHES[hkey] = hash_secret("not-a-real-password-0000")
    verify_secret(_DUMMY_HASHES[hkey], password)
