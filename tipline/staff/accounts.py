"""Staff logins: create and update users, verify passwords and TOTP codes."""

from __future__ import annotations

import base64
import binascii

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.errors import TiplineError
from tipline.models import School, Staff, User
from tipline.vault.keyring import Vault
from tipline.vault.passwords import hash_secret

ROLES = ("admin", "sro", "counselor", "district")
MIN_PASSWORD = 12


class AccountError(TiplineError):
    """A login cannot be created as asked; the message says why."""


def set_totp_secret(vault: Vault, user: User, secret: str | None) -> None:
    """Store a TOTP secret sealed under the user's own data key (None removes it)."""
    if secret is None:
        user._totp_secret, user.data_key = None, None
        return
    cleaned = secret.replace(" ", "").upper()
    try:
        base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise AccountError("--totp-secret must be base32") from None
    if len(cleaned) < 16:
        raise AccountError("--totp-secret must be at least 16 base32 characters (80 bits)")
    dk = vault.new_data_key()
    user.data_key = dk
    user._totp_secret = vault.seal_for(
        "app_user", "totp_secret", str(user.id), dk, cleaned.encode()
    )


def totp_secret(vault: Vault, user: User) -> str | None:
    if user._totp_secret is None or user.data_key is None:
        return None
    raw = vault.open_for("app_user", "totp_secret", str(user.id), user.data_key, user._totp_secret)
    return raw.decode()


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
    user.failed_logins, user.locked_until, user.active = 0, None, True
    session.flush()
    if totp_secret is not None:
        set_totp_secret(vault, user, totp_secret)
    return user, created
