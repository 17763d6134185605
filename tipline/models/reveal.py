"""Break-glass: revealing a student's phone number, with a written reason and two admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id, utcnow
from tipline.models.keys import DataKey

# pending → approved (a second admin) → revealed (the worker decrypted it) → shown (once);
# a request nobody approves within the window is expired.
REVEAL_STATUSES = ("pending", "approved", "revealed", "shown", "expired")


class Reveal(Base):
    """One request to reveal the number behind a tip.

    The reason is sealed like a note under `data_key` (it may quote the tip); the number, once
    the worker decrypts it, is sealed under its own `number_key`, which is deleted the moment
    the requester has seen it: the plain number exists for one page view.
    """

    __tablename__ = "reveal"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete="SET NULL"))
    _reason: Mapped[bytes | None] = mapped_column("reason", LargeBinary)
    number_key_id: Mapped[str | None] = mapped_column(
        ForeignKey("data_key.id", ondelete="SET NULL")
    )
    _number: Mapped[bytes | None] = mapped_column("number", LargeBinary)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    data_key: Mapped[DataKey | None] = relationship(foreign_keys=[data_key_id], lazy="joined")
    number_key: Mapped[DataKey | None] = relationship(foreign_keys=[number_key_id], lazy="joined")
