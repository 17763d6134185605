"""Texts taken while the database is down: answered, spooled, paged, and stored once it is back.

`receive_offline` answers an inbound text from the configuration file alone (no database):
a student gets the usual first reply with an 8-digit code (`records.spool_code`, a length the
database never draws), the text goes to this host's spool (`tipline.platform.spool`), and a
critical one pages the school's on-duty SRO from the file's shifts right away, with no tip
text (severity, category, code, school, "Reply ACK"). Staff texts (ACKs) are spooled too.

`drain` stores the spooled texts once PostgreSQL answers again, in arrival order, each in its
own transaction through the usual intake (`sms.receive_sms`): the MessageSid's unique key makes
it exactly once (a crash between the commit and the file's removal finds the text a replay),
the student's code is kept, and the pages sent during the outage are recorded in the tip
(`PAGED_OFFLINE`) so routing does not send them again while the escalation carries on.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from tipline.alerting import escalation, routing
from tipline.alerting.acks import parse_ack
from tipline.alerting.escalation import PAGED_OFFLINE
from tipline.db import new_id, utcnow
from tipline.district.config import DistrictConfig, SchoolConfig, load_district
from tipline.district.oncall import on_duty, resolve_targets
from tipline.errors import TiplineError, UnknownSchool
from tipline.intake import keywords, receipts, records, replies, sms, web
from tipline.intake.student_sms import MAX_MEDIA, MediaRef, SmsOutcome, Spooled
from tipline.models import InboundSid
from tipline.outbox import gsm, messages
from tipline.platform import queueing
from tipline.platform.services import Services
from tipline.platform.spool import Entry, SpoolError
from tipline.triage import classify
from tipline.vault import audit, passwords

log = logging.getLogger(__name__)

STAFF_REPLY = (
    "tipline: received. The system is recovering; your reply will be applied as soon as it "
    "is back. Nothing else to do."
)
STATUS_PATH = "/sms/status"


def receive_offline(
    svc: Services,
    *,
    to: str,
    from_: str,
    body: str,
    sid: str,
    media: Sequence[MediaRef],
    now: datetime,
) -> SmsOutcome:
    """Answer and spool one inbound text without the database (see the module docstring)."""
    if keywords.is_carrier_keyword(body):
        return SmsOutcome("keyword")  # Twilio answers these itself; we keep no trace
    district = load_district(svc.settings.config_path)
    number, phone = sms.e164(to), sms.e164(from_)
    school = next((s for s in district.schools if s.sms_number == number), None)
    if school is None:
        return SmsOutcome("unknown_school")
    if phone is None:
        return SmsOutcome("bad_sender", school=school.slug)
    seen = svc.spool.find(sid)
    if seen is not None:  # the same MessageSid again (a retry, a replay): the same answer
        return _replayed(seen[1], school)
    record: dict[str, Any] = {
        "kind": "sms",
        "to": to,
        "from": from_,
        "body": body,
        "sid": sid,
        "media": [[m.url, m.content_type] for m in list(media)[:MAX_MEDIA]],
        "at": now.isoformat(),
        "code": None,
        "paged": [],
    }
    return _spool(svc, district, school, record, phone)


def _spool(
    svc: Services,
    district: DistrictConfig,
    school: SchoolConfig,
    record: dict[str, Any],
    phone: str,
) -> SmsOutcome:
    """Spool a text from a known school and sender: a staff text, a keyword, or a new tip."""
    body, sid, now = str(record["body"]), str(record["sid"]), datetime.fromisoformat(record["at"])
    media = record["media"]
    if any(member.phone == phone for member in district.staff):
        svc.spool.put(record, sid)
        log.warning("sms spooled (database down): staff text at %s", school.slug)
        reply = STAFF_REPLY if parse_ack(body) else ""
        return SmsOutcome("spooled", reply=reply, school=school.slug)
    text = records.clean_text(body)
    if keywords.is_new_tip(text) or (not text.strip() and not media):
        svc.spool.put(record, sid)
        lang = keywords.new_tip_language(text) if text.strip() else "en"
        reply = replies.new_tip_reply(lang) if text.strip() else replies.empty_reply(lang)
        return SmsOutcome("spooled", reply=reply, school=school.slug)
    verdict = classify(text, rules=svc.rules_in_hand(dict(district.triage)))
    code = records.spool_code()
    record.update(code=code, lang=verdict.language, crisis=verdict.category == "self_harm")
    entry = svc.spool.put(record, sid)
    if verdict.severity == "critical":
        pages = page_on_duty(svc, district, school, code, verdict.severity, verdict.category, now)
        if pages:
            svc.spool.replace(entry, {**record, "spool_id": entry.id, "paged": pages})
    log.warning(
        "sms spooled (database down): tip %s at %s, %s %s",
        code,
        school.slug,
        verdict.severity,
        verdict.category,
    )
    reply = replies.first_reply(
        verdict.language,
        code=code,
        school=school.name,
        monitored=school.monitored,
        crisis=verdict.category == "self_harm",
    )
    return SmsOutcome("spooled", reply, None, code, school.slug, created=True)


@dataclass(frozen=True)
class OfflineReceipt:
    """What the web form shows for a tip spooled while the database is down."""

    code: str  # formatted in groups, as shown
    passphrase: str


def receive_web_offline(
    svc: Services,
    *,
    school: str,
    text: str,
    attachment: bytes | None,
    lang: str,
    now: datetime,
) -> OfflineReceipt:
    """A web tip without the database: its receipt now, spooled, a critical one paged.

    Raises UnknownSchool, web.EmptyTip or web.AttachmentRejected (type or size; the file is
    cleaned when the tip is stored) as the form's normal path does.
    """
    district = load_district(svc.settings.config_path)
    found = district.school(school)
    if found is None:
        raise UnknownSchool(f"no school {school!r}")
    clean = records.clean_text(text)
    if not clean.strip():
        raise web.EmptyTip("the tip is empty")
    if attachment is not None:
        web.check_attachment(attachment)
    receipt, passphrase = receipts.new_code(), receipts.new_passphrase()
    verdict = classify(clean, rules=svc.rules_in_hand(dict(district.triage)))
    code = records.spool_code()
    key = "web:" + new_id()
    record: dict[str, Any] = {
        "kind": "web",
        "key": key,
        "school": found.slug,
        "text": clean,
        "attachment": base64.b64encode(attachment).decode() if attachment is not None else None,
        "lang": lang,
        "at": now.isoformat(),
        "receipt": receipt,
        "passphrase_hash": passwords.hash_secret(receipts.normalize_passphrase(passphrase)),
        "code": code,
        "paged": [],
    }
    entry = svc.spool.put(record, key)
    if verdict.severity == "critical":
        pages = page_on_duty(svc, district, found, code, verdict.severity, verdict.category, now)
        if pages:
            svc.spool.replace(entry, {**record, "spool_id": entry.id, "paged": pages})
    log.warning(
        "web tip spooled (database down): tip %s at %s, %s %s",
        code,
        found.slug,
        verdict.severity,
        verdict.category,
    )
    return OfflineReceipt(receipts.format_code(receipt), passphrase)


def _replayed(record: dict[str, Any], school: SchoolConfig) -> SmsOutcome:
    """The answer a spooled text got, given again; nothing is spooled or paged twice."""
    code = record.get("code")
    if not isinstance(code, str):
        return SmsOutcome("replay", school=school.slug)
    reply = replies.first_reply(
        str(record.get("lang", "en")),
        code=code,
        school=school.name,
        monitored=school.monitored,
        crisis=bool(record.get("crisis")),
    )
    return SmsOutcome("replay", reply, None, code, school.slug)


def page_on_duty(
    svc: Services,
    district: DistrictConfig,
    school: SchoolConfig,
    code: str,
    severity: str,
    category: str,
    now: datetime,
) -> list[dict[str, str | None]]:
    """Page the school's on-duty SRO (else its fallback) from the file's shifts, by SMS now.

    No tip text: what any alert carries (severity, category, code, school, "Reply ACK"),
    and no link, since a confirm link needs the database. Returns who was reached.
    """
    people = [p.staff for p in on_duty(district, school.slug, "sro", now)]
    if not people:
        people = [r.staff for r in resolve_targets(district, school.slug, school.fallback, now)]
    label = f"{severity.upper()} {category.replace('_', '-')} {code}"
    digits = code[1:]
    body = gsm.cut(
        gsm.to_gsm7(f"{label} {school.name}. Details when the system is back. Reply ACK {digits}"),
        gsm.TWO_SEGMENTS,
    )
    summary = f"{label} · Reply ACK {digits}"
    # Loaded here, not with the module: the webhook path carries no Twilio REST client
    # until the database is down and a page must go out from it.
    from tipline.outbox.notifier import Notifier, SendError  # noqa: PLC0415

    notifier = Notifier(svc.settings)
    pages: list[dict[str, str | None]] = []
    try:
        for staff_id in people:
            member = district.staff_member(staff_id)
            if member is None or not member.phone:
                continue
            sent_sid: str | None = None
            if notifier.console:
                notifier.print_line(f"[sms → {member.id} {member.phone}] {summary}")
            else:
                try:
                    sent = notifier.sms(
                        to=member.phone,
                        from_=school.sms_number,
                        body=body,
                        status_callback=svc.settings.public_url + STATUS_PATH,
                        validity=None,
                    )
                except SendError as e:
                    log.error("offline page of %s for %s failed: %s", member.id, code, e)
                    continue
                sent_sid = sent.sid
            pages.append({"staff": member.id, "sid": sent_sid, "at": now.isoformat()})
            log.warning("tip %s paged %s from the configuration (database down)", code, member.id)
    finally:
        notifier.close()
    return pages


@dataclass
class Drained:
    stored: int = 0  # records stored (or found already stored) and removed
    left: int = 0  # records that could not be stored now
    held: bool = True  # False: another process holds the drain lock


def drain(session: Session, svc: Services) -> Drained:
    """Store this host's spooled texts, oldest first; stop at the first database outage.

    Exactly once: each text runs through intake with the replay check, so a record whose
    commit went through before a crash is found by its MessageSid and only removed.
    """
    spool = svc.spool
    result = Drained()
    if not spool.size():
        return result
    with spool.drain_lock() as held:
        if not held:
            result.held = False
            return result
        entries = _in_arrival_order(svc, result)
        for n, (entry, record) in enumerate(entries):
            try:
                _drain_one(session, svc, entry, record)
            except DBAPIError as e:
                session.rollback()
                if e.connection_invalidated or _is_outage(e):
                    result.left += len(entries) - n
                    log.warning("spool drain stopped: database unavailable")
                    break
                result.left += 1
                log.error("spooled record %s not stored: %s", entry.id, type(e).__name__)
            except (SQLAlchemyError, TiplineError, ValueError, KeyError) as e:
                session.rollback()
                result.left += 1
                log.error("spooled record %s not stored: %s", entry.id, type(e).__name__)
            else:
                result.stored += 1
    if result.stored:
        log.warning("spool drained: %d stored, %d left", result.stored, result.left)
    return result


def _in_arrival_order(svc: Services, result: Drained) -> list[tuple[Entry, dict[str, Any]]]:
    """The readable records, oldest first (a tip before an ACK of its page); an unreadable
    file stays where it is, counted, for an operator to look at."""
    found = []
    for entry in svc.spool.entries():
        try:
            found.append((entry, svc.spool.read(entry)))
        except (SpoolError, ValueError) as e:
            result.left += 1
            log.error("spooled record %s cannot be read: %s", entry.id, e)
    found.sort(key=lambda item: (str(item[1].get("at", "")), item[0].id))
    return found


def _is_outage(e: DBAPIError) -> bool:
    return type(e).__name__ in ("OperationalError", "InterfaceError")


def _drain_one(session: Session, svc: Services, entry: Entry, record: dict[str, Any]) -> None:
    if record.get("kind") == "web":
        _drain_web(session, svc, entry, record)
        return
    spooled = Spooled(
        record.get("code"),
        tuple(p for p in record.get("paged", []) if isinstance(p, dict)),
    )
    kwargs: dict[str, Any] = {
        "to": str(record["to"]),
        "from_": str(record["from"]),
        "body": str(record["body"]),
        "sid": str(record["sid"]),
        "media": [MediaRef(str(u), str(t)) for u, t in record.get("media", [])],
        "now": datetime.fromisoformat(str(record["at"])),
        "spooled": spooled,
    }
    for attempt in (1, 2):
        try:
            outcome = sms.receive_sms(session, svc, check_replay=True, **kwargs)
            session.commit()
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
            continue
        break
    svc.spool.remove(entry)  # stored: from here a crash only leaves a replay to remove
    if outcome.kind == "replay":
        return
    if outcome.code is not None and spooled.code is not None and outcome.code != spooled.code:
        log.warning("spooled tip %s stored as %s (its code was taken)", spooled.code, outcome.code)
    _route(session, svc, outcome)
    for att_id in outcome.attachments:
        queueing.enqueue_fetch_media(svc, att_id)


def _drain_web(session: Session, svc: Services, entry: Entry, record: dict[str, Any]) -> None:
    """A spooled web tip: stored once (its spool key is kept as an InboundSid), then routed."""
    now = datetime.fromisoformat(str(record["at"]))
    marker = svc.vault.lookup_hash(session, "sid", str(record["key"]))
    if session.get(InboundSid, marker) is not None:
        session.rollback()
        svc.spool.remove(entry)  # stored before a crash: only the file was left
        return
    school = records.school_by_slug(session, str(record["school"]))
    raw = record.get("attachment")
    spooled = web.SpooledReceipt(
        str(record["receipt"]), str(record["passphrase_hash"]), str(record["code"])
    )

    def submit(attachment: bytes | None) -> web.WebReceipt:
        return web.submit_web_tip(
            session,
            svc.vault,
            svc.rules(session),
            school=school,
            text=str(record["text"]),
            attachment=attachment,
            lang=str(record.get("lang", "en")),
            now=now,
            spooled=spooled,
        )

    try:
        stored = submit(base64.b64decode(raw) if isinstance(raw, str) else None)
    except web.AttachmentRejected as e:
        session.rollback()
        log.warning("spooled web tip %s: attachment refused (%s), tip kept", spooled.tip_code, e)
        stored = submit(None)
    tip = stored.tip
    paged = [p for p in record.get("paged", []) if isinstance(p, dict)]
    if paged:
        audit.record(session, "student", PAGED_OFFLINE, tip.id, code=tip.code, pages=paged)
    session.add(InboundSid(sid_hash=marker, tip_id=tip.id, reply_kind="web", created_at=now))
    session.commit()
    svc.spool.remove(entry)
    _route(session, svc, SmsOutcome("tip", tip_id=tip.id, code=tip.code, route=True))


def _route(session: Session, svc: Services, outcome: SmsOutcome) -> None:
    """Route the stored tip now, so an ACK spooled after it finds its alert.

    Routing is idempotent (the tip's mark is cleared once); if this fails, the sweeper
    finds the mark and routes it, and the pages sent during the outage still count.
    """
    if not outcome.route or outcome.tip_id is None:
        return
    routed = routing.route_tip(
        session,
        svc.vault,
        svc.rules(session),
        outcome.tip_id,
        utcnow(),
        public_url=svc.settings.public_url,
    )
    run = routed.first_step if routed is not None else None
    if run is None or not run.executed:
        return
    messages.enqueue_sends(svc, run.outbound_ids, front=run.urgent)  # else the sweeper sends
    if run.next_at and run.token:
        escalation.enqueue_timer(svc, run.alert_id, run.token, run.next_at)
