"""Staff logins: create and update users, their second factor and its recovery codes."""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tipline.db import utcnow
from tipline.errors import TiplineError
from tipline.models import RecoveryCode, School, Staff, User
from tipline.staff import sessions
from tipline.vault import audit
from tipline.vault.keyring import Vault
from tipline.vault.passwords import hash_secret, verify_secret

ROLES = ("admin", "sro", "counselor", "district")
MIN_PASSWORD = 12
RECOVERY_CODES = 10
# No 0/o, 1/l/i: read off paper. 12 characters of 31 = 59 bits, hashed with argon2.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 12


class AccountError(TiplineError):
    """A login cannot be created as asked; the message says why."""


def set_totp_secret(vault: Vault, user: User, secret: str | None) -> None:
    """Store a TOTP secret sealed under the user's own data key (None removes it)."""
    if secret is None:
        user._totp_secret, user._totp_pending, user.data_key = None, None, None
        user.last_totp_counter = None
        return
    cleaned = secret.replace(" ", "").upper()
    try:
        base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise AccountError("--totp-secret must be base32") from None
    if len(cleaned) < 16:
        raise AccountError("--totp-secret must be at least 16 base32 characters (80 bits)")
    dk = user.data_key or vault.new_data_key()  # enrollment sealed its pending secret under it
    user.data_key, user._totp_pending = dk, None
    user._totp_secret = vault.seal_for(
        "app_user", "totp_secret", str(user.id), dk, cleaned.encode()
    )


def totp_secret(vault: Vault, user: User) -> str | None:
    if user._totp_secret is None or user.data_key is None:
        return None
    raw = vault.open_for("app_user", "totp_secret", str(user.id), user.data_key, user._totp_secret)
    return raw.decode()


def has_second_factor(user: User) -> bool:
    return user._totp_secret is not None


def pending_totp_secret(vault: Vault, user: User) -> str:
    """The secret the enrollment page offers: the one offered before, or a new one (160 bits).

    Sealed on the login's row until a code confirms it, so every web process sees it and it
    never travels in a cookie.
    """
    if user._totp_pending is not None and user.data_key is not None:
        raw = vault.open_for(
            "app_user", "totp_pending", str(user.id), user.data_key, user._totp_pending
        )
        return raw.decode()
    if user.data_key is None:
        user.data_key = vault.new_data_key()
    secret = pyotp.random_base32(32)
    user._totp_pending = vault.seal_for(
        "app_user", "totp_pending", str(user.id), user.data_key, secret.encode()
    )
    return secret


def confirm_totp(vault: Vault, user: User, counter: int) -> None:
    """Make the pending secret the login's second factor; `counter` is the code just used."""
    secret = pending_totp_secret(vault, user)
    set_totp_secret(vault, user, secret)
    user.last_totp_counter = counter


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Ten fresh one-time codes (older ones stop working); shown once, stored hashed."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        session.add(RecoveryCode(user_id=user.id, code_hash=hash_secret(raw)))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normalize_recovery_code(code: str) -> str | None:
    cleaned = "".join(ch for ch in code.lower() if ch not in " -")
    if len(cleaned) != RECOVERY_LENGTH or any(ch not in RECOVERY_ALPHABET for ch in cleaned):
        return None
    return cleaned


def use_recovery_code(session: Session, user: User, code: str, now: datetime) -> bool:
    """Spend one unused recovery code matching `code`; False if none does."""
    cleaned = normalize_recovery_code(code)
    if cleaned is None:
        return False
    unused = session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).all()
    for row in unused:
        if verify_secret(row.code_hash, cleaned):
            # Compare-and-set: two requests racing with one code cannot both spend it.
            spent = session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            return getattr(spent, "rowcount", 0) == 1
    return False


def recovery_codes_left(session: Session, user: User) -> int:
    return len(
        session.scalars(
            select(RecoveryCode.id).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        ).all()
    )


def may_reset(admin: User, target: User) -> bool:
    """District staff reset anyone; a school's admin resets logins that only see its schools."""
    if not admin.active:
        return False
    if admin.role == "district":
        return True
    if admin.role != "admin" or target.role == "district" or not target.schools:
        return False
    mine = {s.id for s in admin.schools}
    return all(s.id in mine for s in target.schools)


def reset_second_factor(session: Session, vault: Vault, user: User, actor: str) -> None:
    """Forget the login's second factor and recovery codes and end its sessions; audited.

    Its next sign-in (password) leads to enrollment again.
    """
    now = utcnow()
    set_totp_secret(vault, user, None)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = sessions.revoke_all(session, user.id, now)
    audit.record(session, actor, "totp.reset", user=user.id, sessions_ended=ended)


def upsert_user(
    session: Session,
    vault: Vault,
    *,
    email: str,
    role: str,
    password: str,
    schools: list[str],
    totp_secret: str | None = None,
    staff_key: str | None = None,
) -> tuple[User, bool]:
    """Create the login, or update role, password, schools, TOTP and staff link in place."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters")
    school_rows = []
    for slug in schools:
        school = session.scalars(select(School).where(School.slug == slug)).first()
        if school is None:
            raise AccountError(f"unknown school {slug!r} (run `tipline init` first?)")
        school_rows.append(school)
    staff = None
    if staff_key is not None:
        staff = session.scalars(select(Staff).where(Staff.key == staff_key)).first()
        if staff is None:
            raise AccountError(f"unknown staff id {staff_key!r}")
    user = session.scalars(select(User).where(User.email == email)).first()
    created = user is None
    if user is None:
        user = User(email=email)
        session.add(user)
    user.role, user.password_hash = role, hash_secret(password)
    user.schools, user.staff = school_rows, staff
    user.failed_logins, user.last_failed_at, user.active = 0, None, True
    session.flush()
    if not created:
        sessions.revoke_all(session, user.id, utcnow())  # a new password ends every session
    if totp_secret is not None:
        set_totp_secret(vault, user, totp_secret)
    return user, created
