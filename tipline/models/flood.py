"""Flood mode: a school taking more new tips than people could be paged about one by one.

While a flood is open its tips are held for a digest every minute instead of paged one by
one; every tip is still stored and in the queue. The rows say when it started and ended, who
ended it, and what each digest reported, so the dashboard and `/metrics` read it from here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id
from tipline.models.school import School


class Flood(Base):
    """One flood at one school; `ended_at` is NULL while it lasts.

    `digests` counts the digests sent; a digest job carries the count it expects, so of a job,
    its duplicate and the sweeper only one sends each digest (compare-and-set).
    """

    __tablename__ = "flood"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(120))
    last_over_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the rate was last past it
    next_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    digests: Mapped[int] = mapped_column(Integer, default=0)
    tips: Mapped[int] = mapped_column(Integer, default=0)
    critical: Mapped[int] = mapped_column(Integer, default=0)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    ended_by: Mapped[str | None] = mapped_column(String(120))  # "quiet" or "admin:<email>"

    school: Mapped[School] = relationship(lazy="joined")


class FloodTip(Base):
    """A tip that arrived during a flood, waiting for (or reported in) a digest.

    `named`: it would have paged on its own (it adds a person, weapon or place, or says now
    or hurt), so the digest names its code. `urgency` orders the names: 2 for now and hurt,
    1 for either, 0 otherwise. `digest` is the number of the digest that reported it.
    """

    __tablename__ = "flood_tip"

    flood_id: Mapped[str] = mapped_column(
        ForeignKey("flood.id", ondelete="CASCADE"), primary_key=True
    )
    tip_id: Mapped[str] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    named: Mapped[bool] = mapped_column(Boolean, default=False)
    urgency: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[int | None] = mapped_column(Integer, index=True)
