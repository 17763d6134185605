"""What staff sign-in keeps: sessions, recovery codes, and failures per client address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tipline.db import Base, UTCDateTime


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a
    database dump holds no usable session, and deleting or revoking the row ends it."""

    __tablename__ = "staff_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """One of a login's one-time recovery codes, hashed with argon2 like a password."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SigninAddress(Base):
    """Failed staff sign-ins from one client address, keyed by a keyed hash of the address.

    Only staff sign-in writes here (staff are not anonymous); no student request is ever
    counted by address.
    """

    __tablename__ = "signin_address"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delay_until: Mapped[datetime] = mapped_column(UTCDateTime)
