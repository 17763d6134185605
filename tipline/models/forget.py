"""Messages Twilio still holds and tipline has asked it, or will ask it, to delete."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id, utcnow
from tipline.models.keys import DataKey


class TwilioForget(Base):
    """One message to delete at Twilio; the row goes once Twilio has forgotten it.

    An outgoing message is named by its outbox row (whose SID is already stored); an inbound
    text by its MessageSid sealed under a data key of its own, since the SID names the Twilio
    record that holds the student's number. `tip_id` is set only while the text's media are
    still to be fetched: deleting a message deletes its media.
    """

    __tablename__ = "twilio_forget"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    outbound_id: Mapped[str | None] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="CASCADE"), unique=True
    )
    tip_id: Mapped[str | None] = mapped_column(ForeignKey("tip.id", ondelete="SET NULL"))
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete="SET NULL"))
    _sid: Mapped[bytes | None] = mapped_column("sid", LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    data_key: Mapped[DataKey | None] = relationship(lazy="joined")
