"""Schools, staff, shifts and policies: synced from the district config by `tipline init`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base

staff_schools = Table(
    "staff_school",
    Base.metadata,
    Column("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    Column("school_id", ForeignKey("school.id", ondelete="CASCADE"), primary_key=True),
)


class School(Base):
    __tablename__ = "school"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    sms_number: Mapped[str] = mapped_column(String(20), unique=True)
    fallback: Mapped[list[str]] = mapped_column(JSON, default=list)
    monitored: Mapped[str | None] = mapped_column(String(200))
    followup_window_s: Mapped[int] = mapped_column(Integer, default=72 * 3600)
    alert_text: Mapped[str] = mapped_column(String(16), default="excerpt")
    places: Mapped[list[str]] = mapped_column(JSON, default=list)  # its own place names
    # Retention in days (the config's `retention = {...}`): see tipline.vault.retention.
    retention_closed_days: Mapped[int] = mapped_column(
        Integer, default=365, server_default=text("365")
    )
    retention_phone_days: Mapped[int] = mapped_column(
        Integer, default=30, server_default=text("30")
    )
    retention_attachment_days: Mapped[int] = mapped_column(
        Integer, default=90, server_default=text("90")
    )
    # Break-glass (tipline.staff.breakglass): off unless the config turns it on.
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Flood mode's thresholds (the config's `flood = {...}`): see tipline.alerting.flood.
    flood: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Staff(Base):
    """A person who may be paged. Staff phones are work numbers, stored plainly to route alerts."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    schools: Mapped[list[School]] = relationship(secondary=staff_schools, lazy="selectin")


class Shift(Base):
    __tablename__ = "shift"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    duty: Mapped[str] = mapped_column(String(16))
    days: Mapped[list[str]] = mapped_column(JSON)
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))


class Policy(Base):
    """An escalation policy; `steps` is the JSON form of its [[policy.step]] entries."""

    __tablename__ = "policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    severities: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    schools: Mapped[list[str]] = mapped_column(JSON, default=list)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
