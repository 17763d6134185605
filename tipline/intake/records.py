"""Storing tips and messages: the shared core of SMS and web intake.

Plain functions over a session and a vault; the caller commits. Text is sealed before it
reaches any column, so nothing a student sends is stored in the clear (PostgreSQL text columns
could not hold a NUL byte anyway).
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tipline.db import Base, new_id
from tipline.errors import TiplineError, UnknownSchool
from tipline.models import Message, School, Tip, Tipster
from tipline.vault import audit
from tipline.vault.keyring import Vault

MAX_TEXT = 10_000  # characters kept of one message; longer input is cut, never rejected silently


class IntakeError(TiplineError):
    """A tip cannot be taken as sent; the message is safe to show the student."""


@dataclass(frozen=True)
class ConversationEntry:
    direction: str  # "in" (student) or "out" (staff)
    text: str
    at: datetime
    channel: str


def school_by_slug(session: Session, slug: str) -> School:
    school = session.scalars(select(School).where(School.slug == slug, School.active)).first()
    if school is None:
        raise UnknownSchool(f"no school {slug!r}")
    return school


def clean_text(text: str) -> str:
    """Drop NULs and unpaired surrogates, cap the length; the rest is kept as sent."""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:MAX_TEXT]


def new_code(session: Session, school_id: int) -> str:
    """A random `T` code unique within the school: 4 digits while they are plentiful, then more.

    Random, not sequential, so a code says nothing about how many tips a school receives.
    """
    for code in candidate_codes():
        taken = session.scalar(select(Tip.id).where(Tip.school_id == school_id, Tip.code == code))
        if taken is None:
            return code
    raise IntakeError("could not allocate a tip code")  # pragma: no cover - 10^-20 odds


# Never 8 digits: those are the codes handed out while the database is down
# (`SPOOL_DIGITS`, `tipline.intake.outage`), kept as they are when the tip is stored later.
_CODE_DIGITS = (4, 4, 4, 5, 5, 6, 6, 7, 7)
SPOOL_DIGITS = 8


def spool_code() -> str:
    """A code for a tip taken without the database: 8 digits, a length the database's own
    allocator never draws, so it cannot be handed out again once the tip is stored."""
    low = 10 ** (SPOOL_DIGITS - 1)
    return f"T{low + secrets.randbelow(9 * low)}"


def is_spool_code(code: str) -> bool:
    return len(code) == SPOOL_DIGITS + 1 and code[0] == "T" and code[1:].isdigit()


def candidate_codes() -> Iterator[str]:
    """Codes to try in turn. All drawn from one read of the system's randomness (each
    `secrets.randbelow` is a read of its own, more when it rejects a draw); 64 random bits per
    code leave a modulo bias under 10^-10."""
    raw = secrets.token_bytes(8 * len(_CODE_DIGITS))
    for i, digits in enumerate(_CODE_DIGITS):
        low = 10 ** (digits - 1)
        yield f"T{low + int.from_bytes(raw[8 * i : 8 * i + 8], 'big') % (9 * low)}"


def create_tip(
    session: Session,
    vault: Vault,
    *,
    school: School,
    text: str,
    source: str,
    verdict: Any,
    tipster: Tipster | None,
    now: datetime,
    code: str | None = None,
) -> Tip:
    """Seal and add a tip with its verdict and the outbox mark; the caller commits.

    `code`: the one already given out for it (a spooled tip), when still free.
    """
    free = (
        code is not None
        and session.scalar(select(Tip.id).where(Tip.school_id == school.id, Tip.code == code))
        is None
    )
    tip = Tip(
        id=new_id(),
        school=school,
        school_id=school.id,
        code=code if free and code is not None else new_code(session, school.id),
        source=source,
        severity=verdict.severity,
        category=verdict.category,
        language=verdict.language,
        status="new",
        tipster=tipster,
        data_key=vault.new_data_key(),
        created_at=now,
        last_activity_at=now,
        needs_routing=True,
        message_count=1,
    )
    vault.put(tip, "body", clean_text(text))
    vault.put(tip, "triage", json.dumps(verdict_details(verdict), ensure_ascii=False))
    session.add(tip)
    session.flush()  # rows that name the tip only by foreign key (audit) must follow it
    audit.record(
        session,
        "student",
        "tip.created",
        tip.id,
        code=tip.code,
        source=source,
        severity=tip.severity,
        category=tip.category,
    )
    return tip


class Rows:
    """New rows for one request, written with Core inserts in foreign-key order.

    The SMS webhook's hot path: no unit of work, no flush ordering, one INSERT per table.
    Every id is known before the insert, so values are sealed for their row up front.
    """

    ORDER = (
        "data_key",
        "tipster",
        "message",
        "attachment",
        "audit_event",
        "inbound_sid",
        "twilio_forget",
    )

    def __init__(self) -> None:
        self._rows: dict[str, list[dict[str, Any]]] = {name: [] for name in self.ORDER}

    def add(self, table: str, **row: Any) -> None:
        self._rows[table].append(row)

    def sealed(self, vault: Vault, table: str, row_id: str, **values: str) -> dict[str, Any]:
        """A new data key row, and `values` sealed under it for (table, column, row_id)."""
        dk = vault.new_data_key()
        self.add("data_key", id=dk.id, master_key_id=dk.master_key_id, wrapped=dk.wrapped)
        columns: dict[str, Any] = {"data_key_id": dk.id}
        for column, value in values.items():
            raw = value.encode("utf-8", "surrogatepass")
            columns[column] = vault.seal_for(table, column, row_id, dk, raw)
        return columns

    def audit(self, action: str, tip_id: str, **detail: Any) -> None:
        """The same event `audit.record` adds; `detail` never holds tip text or a number."""
        self.add("audit_event", actor="student", action=action, tip_id=tip_id, detail=detail)

    def write(self, session: Session) -> None:
        """Insert what was added since the last write; the session's transaction holds them."""
        conn = session.connection()
        for name in self.ORDER:
            rows = self._rows[name]  # column defaults (created_at, at) are filled in per row
            if rows:
                conn.execute(insert(Base.metadata.tables[name]), rows)
                rows.clear()


@dataclass(frozen=True)
class TipRow:
    """A tip inserted through `Rows`: what the reply and the hand-off need."""

    id: str
    code: str
    language: str
    notified: bool = False  # the workers were told at commit (PostgreSQL NOTIFY): no hand-off


def add_tip_rows(
    session: Session,
    vault: Vault,
    rows: Rows,
    *,
    school_id: int,
    text: str,
    source: str,
    verdict: Any,
    tipster_id: str | None,
    now: datetime,
    code: str | None = None,
) -> TipRow:
    """`create_tip` as rows: the sealed tip, its outbox mark and the `tip.created` event.

    `code`: the one the student was already given (a spooled tip); a fresh one if it is taken.
    """
    tip_id = new_id()
    triage = json.dumps(verdict_details(verdict), ensure_ascii=False)
    tip = dict(
        id=tip_id,
        school_id=school_id,
        source=source,
        severity=verdict.severity,
        category=verdict.category,
        language=verdict.language,
        status="new",
        tipster_id=tipster_id,
        created_at=now,
        last_activity_at=now,
        needs_routing=True,
        message_count=1,
        **rows.sealed(vault, "tip", tip_id, body=clean_text(text), triage=triage),
    )
    rows.write(session)  # its data key and tipster go first
    code = _insert_with_code(session, tip, code)
    rows.audit(
        "tip.created",
        tip_id,
        code=code,
        source=source,
        severity=verdict.severity,
        category=verdict.category,
    )
    return TipRow(tip_id, code, verdict.language)


def _insert_with_code(session: Session, tip: dict[str, Any], first: str | None = None) -> str:
    """Insert the tip under a fresh code; the (school_id, code) key is the uniqueness check.

    A taken code costs one INSERT that does nothing, and a free one (nearly always) no query
    at all. tipline runs on PostgreSQL and SQLite only; both have ON CONFLICT.
    """
    conn = session.connection()
    table = Base.metadata.tables["tip"]
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        module.insert(table)
        .on_conflict_do_nothing(index_elements=["school_id", "code"])
        .returning(table.c.id)  # a row back means it went in (rowcount is not reliable here)
    )
    given = [first] if first else []
    for code in itertools.chain(given, candidate_codes()):
        if conn.execute(stmt, {**tip, "code": code}).first() is not None:
            return code
    raise IntakeError("could not allocate a tip code")  # pragma: no cover - 10^-20 odds


def verdict_details(verdict: Any) -> dict[str, Any]:
    """The parts of a verdict that quote the tip (reasons, spans): sealed with the tip."""
    data = verdict.to_dict()
    return {
        "reasons": data.get("reasons", []),
        "spans": data.get("spans", []),
        "language": data.get("language"),
    }


def add_message(
    session: Session,
    vault: Vault,
    tip: Tip,
    *,
    direction: str,
    channel: str,
    text: str,
    now: datetime,
    author_staff_id: int | None = None,
    author_user_id: int | None = None,
) -> Message:
    """Seal and add one conversation message; a student message re-opens the tip's activity."""
    msg = Message(
        id=new_id(),
        tip_id=tip.id,
        direction=direction,
        channel=channel,
        author_staff_id=author_staff_id,
        author_user_id=author_user_id,
        data_key=vault.new_data_key(),
        created_at=now,
    )
    vault.put(msg, "body", clean_text(text))
    session.add(msg)
    tip.last_activity_at = now
    if direction == "in":
        tip.message_count += 1
    return msg


def tip_text(vault: Vault, tip: Tip) -> str:
    return vault.get_text(tip, "body") or ""


def tip_triage(vault: Vault, tip: Tip) -> dict[str, Any]:
    raw = vault.get_text(tip, "triage")
    return json.loads(raw) if raw else {}


def conversation(session: Session, vault: Vault, tip: Tip) -> list[ConversationEntry]:
    """The whole conversation, the tip's first text included, oldest first."""
    entries = [ConversationEntry("in", tip_text(vault, tip), tip.created_at, tip.source)]
    for msg in session.scalars(
        select(Message).where(Message.tip_id == tip.id).order_by(Message.created_at, Message.id)
    ):
        entries.append(
            ConversationEntry(
                msg.direction, vault.get_text(msg, "body") or "", msg.created_at, msg.channel
            )
        )
    return entries
