"""Staff logins for the admin view."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, LargeBinary, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, utcnow
from tipline.models.keys import DataKey
from tipline.models.school import School, Staff

user_schools = Table(
    "user_school",
    Base.metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("school_id", ForeignKey("school.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete="SET NULL"))
    _totp_secret: Mapped[bytes | None] = mapped_column("totp_secret", LargeBinary)
    # A secret shown on the enrollment page and not yet confirmed by a code (sealed the same way)
    _totp_pending: Mapped[bytes | None] = mapped_column("totp_pending", LargeBinary)
    last_totp_counter: Mapped[int | None] = mapped_column(Integer)
    # Recent failed sign-ins for this login, from anywhere; they lengthen the delays of the
    # addresses that fail next, and lapse a day after the last failure.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    staff: Mapped[Staff | None] = relationship(lazy="joined")
    data_key: Mapped[DataKey | None] = relationship(lazy="joined")
    schools: Mapped[list[School]] = relationship(secondary=user_schools, lazy="selectin")

    # Flask-Login protocol, kept here so the admin blueprint needs no wrapper class.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)
