"""Texts taken while the database is down: answered, spooled, paged, and stored once it is back.

`receive_offline` answers an inbound text from the configuration file alone (no database):
a student gets the usual first reply with an 8-digit code (`records.spool_code`, a length the
database never draws), the text goes to this host's spool (`tipline.platform.spool`), and a
critical one pages the school's on-duty SRO from the file's shifts right away, with no tip
text (severity, category, code, school, "Reply ACK"). Staff texts (ACKs) are spooled too.
`receive_web_offline` does the same for the web form, whose receipt is shown as usual.

`tipline.intake.spooldrain` stores the spool once PostgreSQL answers again.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tipline.alerting.acks import parse_ack
from tipline.db import new_id
from tipline.district.config import DistrictConfig, SchoolConfig, load_district
from tipline.district.oncall import on_duty, resolve_targets
from tipline.errors import UnknownSchool
from tipline.intake import keywords, receipts, records, replies, sms, web
from tipline.intake.student_sms import MAX_MEDIA, MediaRef, SmsOutcome
from tipline.outbox import gsm
from tipline.platform.services import Services
from tipline.triage import classify
from tipline.vault import passwords

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
