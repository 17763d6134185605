"""Internal staff notes on a tip, sealed like the tip itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id, utcnow
from tipline.models.keys import DataKey


class Note(Base):
    """A staff note. Its own data key: notes may quote the tip, so they shred like the tip."""

    __tablename__ = "note"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete="SET NULL"))
    _body: Mapped[bytes | None] = mapped_column("body", LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    data_key: Mapped[DataKey | None] = relationship(lazy="joined")
