"""Storing what the spool kept once PostgreSQL answers again: each text once, then routed.

`drain` stores this host's spooled texts (`tipline.intake.outage`) in arrival order, each in
its own transaction through the usual intake (`sms.receive_sms`, `web.submit_web_tip`): the
MessageSid's unique key (a web tip's spool key, kept the same way) makes it exactly once, since
a crash between the commit and the file's removal leaves a replay that is only removed. The
student's code is kept, and the pages sent during the outage are recorded in the tip
(`PAGED_OFFLINE`) so routing does not send them again while the escalation carries on.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session

from tipline.alerting import escalation, routing
from tipline.alerting.escalation import PAGED_OFFLINE
from tipline.db import utcnow
from tipline.errors import TiplineError
from tipline.intake import records, sms, web
from tipline.intake.student_sms import MediaRef, SmsOutcome, Spooled
from tipline.models import InboundSid
from tipline.outbox import messages
from tipline.platform import queueing
from tipline.platform.services import Services
from tipline.platform.spool import Entry, SpoolError
from tipline.vault import audit

log = logging.getLogger(__name__)


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
    return isinstance(e, OperationalError | InterfaceError)


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
