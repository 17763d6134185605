"""Every message tipline sends (alerts, confirmations, replies), with its delivery state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id, utcnow
from tipline.models.keys import DataKey


class OutboundMessage(Base):
    """One outgoing SMS, call or email; `summary` is the console line (no tip text, no number)."""

    __tablename__ = "outbound_message"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | voice | email
    purpose: Mapped[str] = mapped_column(String(16))  # alert | confirm | reply | notice
    tip_id: Mapped[str | None] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    to_label: Mapped[str] = mapped_column(String(80))  # staff key, or "student"
    summary: Mapped[str] = mapped_column(String(200))
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete="SET NULL"))
    _body: Mapped[bytes | None] = mapped_column("body", LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    data_key: Mapped[DataKey | None] = relationship(lazy="joined")
