"""SMS intake: one inbound text becomes a new tip, a follow-up, a staff command, or nothing.

This module sorts a text out (carrier keyword, unknown school, staff command, replay) and
commits; `tipline.intake.student_sms` decides what a student's text becomes. No Flask, no network;
the sender's number is never stored in the clear, logged, or put in an exception message.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tipline.district.cache import SchoolInfo, lookups
from tipline.district.config import normalize_phone
from tipline.intake import keywords, records, replies, student_sms
from tipline.intake.staffsms import handle_staff_sms
from tipline.intake.student_sms import MAX_MEDIA, MediaRef, SmsOutcome
from tipline.models import InboundSid, School, Staff, Tip
from tipline.outbox import forget
from tipline.platform import queueing
from tipline.platform.services import Services

log = logging.getLogger(__name__)

__all__ = ["MAX_MEDIA", "MediaRef", "SmsOutcome", "e164", "hand_off", "receive_and_commit"]


def e164(value: str) -> str | None:
    """The number in E.164 form, or None (short codes, alphanumeric senders, garbage)."""
    try:
        # The very normalization staff and school numbers were stored with, so they match.
        return normalize_phone(value)
    except ValueError:
        return None  # its message is dropped with it: it quotes the number


@functools.lru_cache(maxsize=256)
def _school_number(to: str) -> str | None:
    """`e164` of the number texted: a school's own public number, so worth remembering.

    Never used for `From`: a student's number must not linger in a process's memory.
    """
    return e164(to)


def _keyword(body: str, school: SchoolInfo | None) -> SmsOutcome:
    """Twilio answers these itself; we keep no trace. Where break-glass is on, HELP also gets
    our own answer, which says that two administrators can reveal a number."""
    lang = keywords.help_language(body)
    if lang is None or school is None or not school.break_glass:
        return SmsOutcome("keyword")
    return SmsOutcome("keyword", reply=replies.help_reply(lang, school=school.name))


def receive_sms(
    session: Session,
    svc: Services,
    *,
    to: str,
    from_: str,
    body: str,
    sid: str,
    media: Sequence[MediaRef],
    now: datetime,
    check_replay: bool = True,
    bind: Engine | None = None,
    spooled: student_sms.Spooled | None = None,
) -> SmsOutcome:
    """Store what one inbound text means in the session; the caller commits, then hands off.

    `spooled`: the text was taken while the database was down (`tipline.intake.outage`).

    With `check_replay=False` a student's replayed MessageSid is caught by the unique key at
    commit instead of by a lookup first (`receive_and_commit` does that: one query less on
    every text, since Twilio does not retry inbound messages by default).
    """
    phone, number = e164(from_), _school_number(to)
    school = lookups(svc).school(session, number) if number is not None else None
    if keywords.is_carrier_keyword(body):
        return _keyword(body, school)
    if school is None:
        return SmsOutcome("unknown_school")
    if phone is None:
        return SmsOutcome("bad_sender", school=school.slug)
    staff_found = None
    if lookups(svc).may_be_staff(session, phone):
        staff_found = _school_and_staff(session, number, phone)  # the database has the last word
    staff = staff_found[1] if staff_found is not None else None
    sid_hash = svc.vault.lookup_hash(session, "sid", sid)
    if check_replay or staff is not None:  # a staff command must never run twice
        seen = session.get(InboundSid, sid_hash)
        if seen is not None:
            return _replayed(session, seen)
    if staff_found is not None and staff is not None:
        via = "spool" if spooled is not None else "sms"
        reply = handle_staff_sms(session, svc, staff, staff_found[0], body, now, via)
        session.add(InboundSid(sid_hash=sid_hash, tip_id=None, reply_kind="staff", created_at=now))
        forget.inbound(session, svc.vault, sid, now)  # Twilio forgets the staff text too
        return SmsOutcome("staff", reply=reply, school=school.slug)
    engine = bind if bind is not None else session.get_bind().engine
    inbound = student_sms.Inbound(
        session, svc, school, sid, sid_hash, list(media)[:MAX_MEDIA], now, engine, spooled
    )
    return student_sms.student_text(inbound, phone, records.clean_text(body), check_replay)


def receive_and_commit(
    session: Session,
    svc: Services,
    *,
    to: str,
    from_: str,
    body: str,
    sid: str,
    media: Sequence[MediaRef],
    now: datetime,
    bind: Engine | None = None,
) -> SmsOutcome:
    """`receive_sms` in one transaction, committed.

    `session` may be a `scoped_session` with `bind` its engine: then a first text, whose one
    statement runs on its own connection and needs no session, never makes a Session at all.

    A replayed MessageSid, or two first texts from one new phone racing, fail a unique key;
    running once more, with the replay lookup, sees the winner's rows (the same reply, or a
    follow-up in the tip just created) instead of a 500.
    """
    for attempt in (1, 2):
        try:
            outcome = receive_sms(
                session,
                svc,
                to=to,
                from_=from_,
                body=body,
                sid=sid,
                media=media,
                now=now,
                check_replay=attempt == 2,
                bind=bind,
            )
            if _session_used(session):
                session.commit()  # else nothing was read or written here (a first text's one
                # statement commits on its own): no empty transaction to open and close
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
            continue
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


def _session_used(session: Session) -> bool:
    """Anything read or written through `session`; a scoped_session's unmade one: nothing."""
    registry = getattr(session, "registry", None)
    if registry is not None:  # a scoped_session
        if not registry.has():
            return False
        session = registry()
    return session.in_transaction() or bool(session.new)


def hand_off(svc: Services, outcome: SmsOutcome) -> None:
    """After the commit: queue routing and media downloads, and log codes only."""
    if outcome.route and outcome.tip_id is not None and not outcome.handed_off:
        queueing.hand_off_route(svc, outcome.tip_id, outcome.code or "")
    for att_id in outcome.attachments:
        queueing.enqueue_fetch_media(svc, att_id)
    if outcome.code is not None:
        log.info(
            "sms %s: tip %s at %s%s%s",
            outcome.kind,
            outcome.code,
            outcome.school,
            " (routing)" if outcome.route else "",
            f", {len(outcome.attachments)} media" if outcome.attachments else "",
        )
    else:
        log.info("sms %s at %s", outcome.kind, outcome.school or "-")


def _school_and_staff(
    session: Session, number: str | None, phone: str | None
) -> tuple[School, Staff | None] | None:
    """The active school texted, and the active staff member texting (if it is one): one query."""
    if number is None:
        return None
    row = session.execute(
        select(School, Staff)
        .outerjoin(Staff, and_(Staff.phone == (phone or ""), Staff.active))
        .where(School.sms_number == number, School.active)
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def _replayed(session: Session, seen: InboundSid) -> SmsOutcome:
    kind, _, rest = seen.reply_kind.partition(":")
    lang, _, flag = rest.partition(":")
    tip = session.get(Tip, seen.tip_id) if seen.tip_id else None
    reply = ""
    if kind == "tip" and tip is not None:
        reply = replies.first_reply(
            lang,
            code=tip.code,
            school=tip.school.name,
            monitored=tip.school.monitored,
            crisis=flag == "988",
        )
    elif kind == "followup" and tip is not None:
        reply = replies.followup_reply(lang, code=tip.code, crisis=flag == "988")
    elif kind == "new":
        reply = replies.new_tip_reply(lang)
    # A replayed staff command gets no answer: running it again could acknowledge twice.
    if tip is None:
        return SmsOutcome("replay", reply=reply)
    return SmsOutcome("replay", reply, tip.id, tip.code, tip.school.slug)
