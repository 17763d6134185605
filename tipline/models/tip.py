"""Tips, the people who send them, their conversation and attachments — all sealed per record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tipline.db import Base, UTCDateTime, new_id, utcnow
from tipline.models.keys import DataKey
from tipline.models.school import School

SHRED = "SET NULL"  # deleting a data key leaves the row, now unreadable


class Tipster(Base):
    """A sender: an SMS phone (keyed hash + sealed copy) or a web receipt (hash + argon2)."""

    __tablename__ = "tipster"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(8))
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    receipt_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    passphrase_hash: Mapped[str | None] = mapped_column(String(200))
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete=SHRED))
    _phone: Mapped[bytes | None] = mapped_column("phone", LargeBinary)
    language: Mapped[str] = mapped_column(String(8), default="en")
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    data_key: Mapped[DataKey | None] = relationship(lazy="joined")


class Tip(Base):
    __tablename__ = "tip"
    # The unique key also serves lookups by school (its leading column). No second index on
    # school_id: with one, a prepared statement's generic plan can probe a code by scanning
    # every tip of the school instead (see tipline.intake.firsttext).
    __table_args__ = (UniqueConstraint("school_id", "code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    code: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    tipster_id: Mapped[str | None] = mapped_column(ForeignKey("tipster.id", ondelete="SET NULL"))
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete=SHRED))
    _body: Mapped[bytes | None] = mapped_column("body", LargeBinary)
    _triage: Mapped[bytes | None] = mapped_column("triage", LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The outbox mark: set in the intake transaction, cleared by the routing job.
    needs_routing: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    # Indexed for flood mode's rate (tips of a school routed in the last seconds).
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # A web tip whose browser session sent none before (flood mode counts these): a flag,
    # not the session, so no tip can be tied to another.
    fresh_session: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    message_count: Mapped[int] = mapped_column(Integer, default=1)
    # Retention (tipline.vault.retention): a closed tip is purged `closed_days` after
    # `closed_at`; a tip under legal hold is never closed as stale nor purged.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    school: Mapped[School] = relationship(lazy="joined")
    tipster: Mapped[Tipster | None] = relationship()
    data_key: Mapped[DataKey | None] = relationship(lazy="joined")

    @property
    def code_digits(self) -> str:
        return self.code.lstrip("T")


class Message(Base):
    """One message after the tip's first text: student follow-ups and staff replies."""

    __tablename__ = "message"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(4))  # "in" from the student, "out" from staff
    channel: Mapped[str] = mapped_column(String(8))  # sms | web
    author_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    author_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete=SHRED))
    _body: Mapped[bytes | None] = mapped_column("body", LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    delivery_status: Mapped[str | None] = mapped_column(String(16))

    data_key: Mapped[DataKey | None] = relationship(lazy="joined")


FORGOTTEN_AT_TWILIO = frozenset({"stored", "rejected"})  # final here: Twilio is asked to forget
# A web upload sealed as it came, waiting for the sandbox; never downloadable in this state.
CHECKING = "checking"


class Attachment(Base):
    """An image or PDF; SMS media is fetched from Twilio by the worker, never the webhook."""

    __tablename__ = "attachment"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|checking|stored|rejected|…
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_key.id", ondelete=SHRED))
    _content: Mapped[bytes | None] = mapped_column("content", LargeBinary)
    _source: Mapped[bytes | None] = mapped_column("source", LargeBinary)  # sealed media URL
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    data_key: Mapped[DataKey | None] = relationship(lazy="joined")


class InboundSid(Base):
    """A seen MessageSid, as a keyed hash: a replay gets the same reply and creates nothing."""

    __tablename__ = "inbound_sid"

    sid_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tip_id: Mapped[str | None] = mapped_column(ForeignKey("tip.id", ondelete="CASCADE"))
    reply_kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
