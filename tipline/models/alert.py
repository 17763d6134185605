"""Alerting state: on-call overrides, incidents, alerts, executed steps and deliveries.

The database is the source of truth for every escalation: Redis only carries timers and send
jobs, each of which re-checks these rows before doing anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id, utcnow
from tipline.models.outbox import OutboundMessage
from tipline.models.school import School, Staff
from tipline.models.tip import Tip


class OnCallOverride(Base):
    """Someone covers a duty at a school from `start` to `end` (end exclusive), e.g. a sick day."""

    __tablename__ = "oncall_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    duty: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    school: Mapped[School] = relationship(lazy="joined")
    staff: Mapped[Staff] = relationship(lazy="joined")


class Incident(Base):
    """Tips about one event at one school: paged once, with a running count.

    `keys` holds keyed hashes of the places, people, weapons and harms the tips name
    (`place:<hash>`), never the words themselves: the tip text stays sealed. The window is
    measured from `opened_at`, not from the last tip.
    """

    __tablename__ = "incident"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_tip_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    tip_count: Mapped[int] = mapped_column(Integer, default=1)
    severity: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    signals: Mapped[list[str]] = mapped_column(JSON, default=list)  # "now", "hurt" once said
    alert_id: Mapped[str | None] = mapped_column(String(32))  # the alert now paging for it


class IncidentTip(Base):
    """A tip's place in an incident; `paged` when the tip made the incident page (again)."""

    __tablename__ = "incident_tip"

    tip_id: Mapped[str] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paged: Mapped[bool] = mapped_column(Boolean, default=False)


class Alert(Base):
    """One escalation: a snapshot of its policy, where it is, and the token of its next timer.

    `round`/`step` name the next step to run and `next_at` when; `next_at` is NULL once the
    chain is over. A timer job carries the token it was scheduled with and does nothing unless
    it still matches (Grafana OnCall's active-escalation id).
    """

    __tablename__ = "alert"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), index=True)
    incident_id: Mapped[str | None] = mapped_column(
        ForeignKey("incident.id", ondelete="SET NULL"), index=True
    )
    severity: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    token: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(120), default="new tip")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_by_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL")
    )
    acked_via: Mapped[str | None] = mapped_column(String(16))

    school: Mapped[School] = relationship(lazy="joined")
    tip: Mapped[Tip] = relationship(lazy="joined")
    acked_by: Mapped[Staff | None] = relationship(lazy="joined")


class AlertStep(Base):
    """An executed step. The unique key is the guard that holds on SQLite and PostgreSQL alike."""

    __tablename__ = "alert_step"
    __table_args__ = (UniqueConstraint("alert_id", "round", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    executed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    executed_by: Mapped[str] = mapped_column(String(16))  # job | sweeper | inline
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    used_fallback: Mapped[bool] = mapped_column(Boolean, default=False)


class Delivery(Base):
    """How and when to send one OutboundMessage; the send job's own state.

    `due_at` is when the next attempt is owed (the sweeper re-enqueues overdue ones).
    `ack_token_hash` is the SHA-256 of the confirm-page token in this message's link.
    """

    __tablename__ = "delivery"

    outbound_id: Mapped[str] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="CASCADE"), primary_key=True
    )
    alert_id: Mapped[str | None] = mapped_column(
        ForeignKey("alert.id", ondelete="CASCADE"), index=True
    )
    round: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    from_number: Mapped[str | None] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ack_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    fallback_of: Mapped[str | None] = mapped_column(String(32), unique=True)
    message_id: Mapped[str | None] = mapped_column(  # a staff reply this SMS carries
        ForeignKey("message.id", ondelete="SET NULL")
    )

    message: Mapped[OutboundMessage] = relationship(lazy="joined")


class DeliveryAttempt(Base):
    """One call to the provider, written and committed before the call is made.

    An attempt without `finished_at` is one whose outcome nobody saw (a crash or a timeout):
    the next attempt first asks the provider whether the message exists.
    """

    __tablename__ = "delivery_attempt"
    __table_args__ = (UniqueConstraint("outbound_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    outbound_id: Mapped[str] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # sent|transient|ambiguous|final|...
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(16))
