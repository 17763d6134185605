"""Wrapped keys: one data key per encrypted record, and named secrets like the lookup key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from tipline.db import Base, UTCDateTime, new_id, utcnow


class DataKey(Base):
    """A record's AES-256 key, wrapped by a master key. Deleting it crypto-shreds the record."""

    __tablename__ = "data_key"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # No index: rotation asks for keys *not* under the current master key (see Vault.rotate).
    master_key_id: Mapped[str] = mapped_column(String(64))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NamedSecret(Base):
    """A process-wide secret (the lookup key), wrapped like a data key so rotation re-wraps it."""

    __tablename__ = "named_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    master_key_id: Mapped[str] = mapped_column(String(64))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
