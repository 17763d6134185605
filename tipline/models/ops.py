"""Operational state kept in the database: leases and heartbeats of background loops."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from tipline.db import Base, UTCDateTime


class WorkerLease(Base):
    """One row per singleton loop (the sweeper): who holds it, until when, last heartbeat."""

    __tablename__ = "worker_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


TRIAGE_SETTING = "triage"  # the Setting that holds the district's `[triage]` words


class Setting(Base):
    """A district-wide setting synced from the config file (e.g. the `[triage]` words)."""

    __tablename__ = "setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
