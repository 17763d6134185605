"""A student's text: a new tip, a follow-up in the open conversation, or NEW.

Plain functions over a session and the Services; no Flask, no network. The student's phone
number is used here only to compute its keyed hash and to seal a copy for replies: it is never
stored in the clear, logged, or put in an exception message. `tipline.intake.sms` decides
that a text is a student's; this module decides what it becomes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tipline.alerting.escalation import PAGED_OFFLINE
from tipline.db import new_id
from tipline.district.cache import SchoolInfo
from tipline.intake import firsttext, keywords, records, replies
from tipline.models import AuditEvent, Tip, Tipster
from tipline.outbox import forget
from tipline.platform.services import Services
from tipline.triage import Verdict, classify
from tipline.triage.verdict import LEVELS

MAX_MEDIA = 10  # Twilio's own limit per MMS; more is not a real message
THREAD_ENDED = "tip.thread_ended"  # audit action: the student texted NEW, this tip stops threading
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9.+-]{1,40}/[A-Za-z0-9.+-]{1,50}$")


@dataclass(frozen=True)
class MediaRef:
    """One MMS item as Twilio announced it: where to fetch it and the type it claims."""

    url: str
    content_type: str


@dataclass(frozen=True)
class SmsOutcome:
    """What became of one inbound text, and what to hand to the worker after the commit.

    kind: tip | followup | new | staff | keyword | blocked | replay | empty | unknown_school |
    bad_sender. Ids and codes are plain strings so nothing reloads rows after the commit.
    """

    kind: str
    reply: str = ""
    tip_id: str | None = None
    code: str | None = None
    school: str | None = None
    created: bool = False
    route: bool = False
    attachments: tuple[str, ...] = ()
    handed_off: bool = False  # the workers already know (the commit notified them)


@dataclass(frozen=True)
class Spooled:
    """A text the spool kept while the database was down, now stored for good.

    code: the code the student was answered with (`records.spool_code`), kept as it is.
    paged: who was paged from the configuration then ({"staff", "sid", "at"} each), so
    routing does not page them again (`tipline.alerting.escalation`).
    """

    code: str | None
    paged: tuple[dict[str, str | None], ...] = ()


@dataclass(frozen=True)
class Inbound:
    """One student text on its way into the database."""

    session: Session
    svc: Services
    school: SchoolInfo
    sid: str  # only to seal for its deletion at Twilio (`tipline.outbox.forget`)
    sid_hash: str
    media: list[MediaRef]
    now: datetime
    bind: Engine  # the session's: `tipline.intake.firsttext` runs on a connection of its own
    spooled: Spooled | None = None

    def remember(self, rows: records.Rows, kind: str, tip_id: str | None) -> None:
        """Keep the MessageSid (as a keyed hash) and what was answered, for replays; and the
        MessageSid sealed, so the worker has Twilio delete the text."""
        rows.add(
            "inbound_sid",
            sid_hash=self.sid_hash,
            tip_id=tip_id,
            reply_kind=kind,
            created_at=self.now,
        )
        self.forget(rows, tip_id)

    def forget(self, rows: records.Rows, tip_id: str | None) -> None:
        """Have Twilio delete this text; with media, once the tip has none left to fetch."""
        forget_id = new_id()
        rows.add(
            "twilio_forget",
            id=forget_id,
            outbound_id=None,
            tip_id=tip_id if self.media else None,
            created_at=self.now,
            not_before=self.now + forget.INBOUND_FIRST_TRY,
            attempts=0,
            **rows.sealed(self.svc.vault, "twilio_forget", forget_id, sid=self.sid),
        )


@dataclass(frozen=True)
class _Sender:
    """The columns of a known tipster that intake reads (no ORM object on the hot path)."""

    id: str
    blocked: bool
    language: str


@dataclass(frozen=True)
class _OpenTip:
    id: str
    code: str
    severity: str


def student_text(inbound: Inbound, phone: str, text: str, check_replay: bool) -> SmsOutcome:
    """A student's text: the one-statement first text when it can be, else the general path."""
    verdict = None
    phone_hash = inbound.svc.vault.lookup_hash(inbound.session, "phone", phone)
    if not check_replay and inbound.spooled is None and _may_be_first_text(inbound, text):
        verdict = classify(text, rules=inbound.svc.rules(inbound.session))
        outcome = _first_text(inbound, phone, phone_hash, text, verdict)
        if outcome is not None:
            return outcome
    return _from_student(inbound, phone, phone_hash, text, verdict)


def _may_be_first_text(inbound: Inbound, text: str) -> bool:
    """Worth trying `tipline.intake.firsttext`: PostgreSQL, a plain text that would become a tip."""
    return (
        not inbound.media
        and firsttext.supported(inbound.bind)
        and bool(text.strip())
        and not keywords.is_new_tip(text)
    )


def _first_text(
    inbound: Inbound, phone: str, phone_hash: str, text: str, verdict: Verdict
) -> SmsOutcome | None:
    """A new phone's first text in one statement; None when the general path must decide."""
    vault = inbound.svc.vault
    first = firsttext.FirstText(
        school_id=inbound.school.id,
        phone=phone,
        phone_hash=phone_hash,
        sid=inbound.sid,
        sid_hash=inbound.sid_hash,
        text=text,
        verdict=verdict,
        reply_kind=reply_kind("tip", verdict.language, _crisis(verdict)),
        now=inbound.now,
    )
    tip = firsttext.store(inbound.bind, vault, first)
    return None if tip is None else _tip_outcome(inbound.school, tip, verdict)


def _from_student(
    inbound: Inbound, phone: str, phone_hash: str, text: str, verdict: Verdict | None
) -> SmsOutcome:
    session, school = inbound.session, inbound.school
    # Columns on the session's connection, not entities: no ORM loading on the hot path.
    row = (
        session.connection()
        .execute(
            select(Tipster.id, Tipster.blocked, Tipster.language).where(
                Tipster.phone_hash == phone_hash
            )
        )
        .first()
    )
    tipster = None if row is None else _Sender(row.id, bool(row.blocked), row.language)
    if tipster is not None and tipster.blocked:
        _forget_only(inbound)
        return SmsOutcome("blocked", school=school.slug)
    if keywords.is_new_tip(text):
        return _end_thread(inbound, tipster, text)
    if not text.strip() and not inbound.media:
        _forget_only(inbound)
        lang = tipster.language if tipster is not None else "en"
        return SmsOutcome("empty", reply=replies.empty_reply(lang), school=school.slug)
    if verdict is None:
        verdict = classify(text, rules=inbound.svc.rules(session))
    rows = records.Rows()
    # A spooled text with a code was answered as a new tip: it becomes one, under that code.
    as_new = inbound.spooled is not None and inbound.spooled.code is not None
    if tipster is not None:
        open_tip = None if as_new else _open_tip(session, tipster.id, school, inbound.now)
        if open_tip is not None:
            return _follow_up(inbound, rows, tipster, open_tip, text, verdict)
        tipster_id = tipster.id
        # later replies use the language of the latest tip
        session.connection().execute(
            update(Tipster).where(Tipster.id == tipster_id).values(language=verdict.language)
        )
    else:
        tipster_id = new_id()
        # The sealed copy is what lets staff replies reach the student later; only the worker
        # that sends them opens it.
        rows.add(
            "tipster",
            id=tipster_id,
            kind="sms",
            phone_hash=phone_hash,
            language=verdict.language,
            blocked=False,
            created_at=inbound.now,
            **rows.sealed(inbound.svc.vault, "tipster", tipster_id, phone=phone),
        )
    return _new_tip(inbound, rows, tipster_id, text, verdict)


def _forget_only(inbound: Inbound) -> None:
    """A text that is not kept is not left at Twilio either."""
    rows = records.Rows()
    inbound.forget(rows, None)
    rows.write(inbound.session)


def _new_tip(
    inbound: Inbound, rows: records.Rows, tipster_id: str, text: str, verdict: Verdict
) -> SmsOutcome:
    school = inbound.school
    tip = records.add_tip_rows(
        inbound.session,
        inbound.svc.vault,
        rows,
        school_id=school.id,
        text=text,
        source="sms",
        verdict=verdict,
        tipster_id=tipster_id,
        now=inbound.now,
        code=inbound.spooled.code if inbound.spooled is not None else None,
    )
    if inbound.spooled is not None and inbound.spooled.paged:
        rows.audit(PAGED_OFFLINE, tip.id, code=tip.code, pages=list(inbound.spooled.paged))
    atts = _record_media(inbound, rows, tip.id, None)
    inbound.remember(rows, reply_kind("tip", tip.language, _crisis(verdict)), tip.id)
    rows.write(inbound.session)
    return _tip_outcome(school, tip, verdict, atts)


def _crisis(verdict: Verdict) -> bool:
    """The reply adds the 988 Lifeline."""
    return verdict.category == "self_harm"


def _tip_outcome(
    school: SchoolInfo, tip: records.TipRow, verdict: Verdict, atts: tuple[str, ...] = ()
) -> SmsOutcome:
    """A new tip stored: the first reply with its code, and routing to hand off."""
    reply = replies.first_reply(
        tip.language,
        code=tip.code,
        school=school.name,
        monitored=school.monitored,
        crisis=_crisis(verdict),
    )
    return SmsOutcome(
        "tip",
        reply,
        tip.id,
        tip.code,
        school.slug,
        created=True,
        route=True,
        attachments=atts,
        handed_off=tip.notified,
    )


def reply_kind(kind: str, lang: str, crisis: bool) -> str:
    """InboundSid.reply_kind: enough to give a replay the very same reply."""
    return f"{kind}:{replies.language(lang)}" + (":988" if crisis else "")


def _open_tip(
    session: Session, tipster_id: str, school: SchoolInfo, now: datetime
) -> _OpenTip | None:
    """The tip this phone's texts still thread into at this school, if any.

    Closed tips never thread: a student texting months later about something else must not
    land in a case staff have finished. NEW ends a thread on the student's own request.
    """
    ended = select(AuditEvent.id).where(
        AuditEvent.tip_id == Tip.id, AuditEvent.action == THREAD_ENDED
    )
    row = (
        session.connection()
        .execute(
            select(Tip.id, Tip.code, Tip.severity)
            .where(
                Tip.tipster_id == tipster_id,
                Tip.school_id == school.id,
                Tip.status != "closed",
                Tip.last_activity_at >= now - timedelta(seconds=school.followup_window_s),
                ~ended.exists(),
            )
            .order_by(Tip.last_activity_at.desc())
            .limit(1)
        )
        .first()
    )
    return None if row is None else _OpenTip(row.id, row.code, row.severity)


def _end_thread(inbound: Inbound, tipster: _Sender | None, text: str) -> SmsOutcome:
    """NEW/NUEVO: the next text starts a fresh tip. Nothing is created for the word itself."""
    session, school = inbound.session, inbound.school
    lang = keywords.new_tip_language(text)
    current = _open_tip(session, tipster.id, school, inbound.now) if tipster is not None else None
    rows = records.Rows()
    if current is not None:
        rows.audit(THREAD_ENDED, current.id, code=current.code)
    inbound.remember(rows, reply_kind("new", lang, False), current.id if current else None)
    rows.write(session)
    return SmsOutcome("new", reply=replies.new_tip_reply(lang), school=school.slug)


def _follow_up(
    inbound: Inbound,
    rows: records.Rows,
    tipster: _Sender,
    tip: _OpenTip,
    text: str,
    verdict: Verdict,
) -> SmsOutcome:
    """Add the text to the open tip; a more severe verdict raises the tip and routes it again.

    Severity only goes up: a later "jk" must not quiet a tip that was already life-safety.
    """
    session, vault, now = inbound.session, inbound.svc.vault, inbound.now
    msg_id = new_id()
    rows.add(
        "message",
        id=msg_id,
        tip_id=tip.id,
        direction="in",
        channel="sms",
        author_staff_id=None,
        author_user_id=None,
        created_at=now,
        **rows.sealed(vault, "message", msg_id, body=records.clean_text(text)),
    )
    changes: dict[str, object] = {
        "last_activity_at": now,
        "message_count": Tip.message_count + 1,
    }
    escalated = LEVELS[verdict.severity] > LEVELS.get(tip.severity, 0)
    if escalated:
        changes.update(severity=verdict.severity, category=verdict.category, needs_routing=True)
        rows.audit(
            "tip.escalated",
            tip.id,
            code=tip.code,
            source="sms",
            previous=tip.severity,
            severity=verdict.severity,
            category=verdict.category,
        )
    session.connection().execute(update(Tip).where(Tip.id == tip.id).values(changes))
    rows.audit("tip.followup", tip.id, code=tip.code, channel="sms")
    atts = _record_media(inbound, rows, tip.id, msg_id)
    crisis = _crisis(verdict)
    inbound.remember(rows, reply_kind("followup", tipster.language, crisis), tip.id)
    rows.write(session)
    reply = replies.followup_reply(tipster.language, code=tip.code, crisis=crisis)
    return SmsOutcome(
        "followup", reply, tip.id, tip.code, inbound.school.slug, route=escalated, attachments=atts
    )


def _record_media(
    inbound: Inbound, rows: records.Rows, tip_id: str, message_id: str | None
) -> tuple[str, ...]:
    """Pending attachments with the media URL sealed; the worker fetches them, never this path.

    The URL is sealed because it names the Twilio message, whose logs hold the student's number.
    """
    ids = []
    for ref in inbound.media:
        declared = ref.content_type if _CONTENT_TYPE.match(ref.content_type) else "unknown/unknown"
        att_id = new_id()
        rows.add(
            "attachment",
            id=att_id,
            tip_id=tip_id,
            message_id=message_id,
            content_type=declared.lower(),
            status="pending",
            created_at=inbound.now,
            **rows.sealed(inbound.svc.vault, "attachment", att_id, source=ref.url),
        )
        ids.append(att_id)
    return tuple(ids)
