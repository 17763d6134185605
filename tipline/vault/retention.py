"""Retention: crypto-shred what a school no longer keeps (`tipline purge`, daily in the worker).

Each school's periods come from its `retention = {...}` in the configuration file (synced to
`school.retention_*_days`):

- an open tip without activity for `STALE_AFTER` is closed as stale, then follows the rule
  for closed tips;
- a closed tip is purged `closed_days` after it was closed: its data key and those of its
  messages, attachments, notes and outgoing messages (alert and e-mail excerpts, replies) are
  deleted and their ciphertext set to NULL, its incidents forget their keys, its MessageSid
  hashes go, and its sender's row goes once no unpurged tip needs it (a blocked sender keeps
  only the phone hash, so the block holds);
- an attachment is shredded `attachment_days` after it arrived;
- a student's number (sealed copy and hash) is forgotten `phone_days` after the last message
  of its conversations.

A tip under legal hold is exempt from all of it. What stays: the tip row's clear columns
(school, code, severity, category, status, times), so the dashboard's counts do not change,
and the audit log, which holds ids only and is never rewritten, so its hash chain verifies.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, exists, func, select, update
from sqlalchemy.orm import Session

from tipline.db import utcnow
from tipline.models import (
    Attachment,
    DataKey,
    InboundSid,
    Incident,
    IncidentTip,
    Message,
    Note,
    OutboundMessage,
    Reveal,
    School,
    Setting,
    SigninAddress,
    StaffSession,
    Tip,
    Tipster,
)
from tipline.vault import audit

STALE_AFTER = timedelta(days=365)  # an open tip this long without activity is closed as stale
REPLAY_WINDOW = timedelta(days=30)  # MessageSid hashes kept to answer Twilio's retries
STAFF_TRACES = timedelta(days=1)  # failed sign-in addresses and dead staff sessions
DAILY = timedelta(days=1)
LAST_RUN = "retention.last_run"  # the Setting the worker's daily run keeps its time in
DAILY_BATCH = 200  # tips purged per sweeper pass, so one pass never holds the sweeper long
UNSENT = ("pending", "retry", "unknown")  # outbox states a send job would still act on

Shown = tuple[str, str]  # (school slug, tip code): what `--dry-run` names, never text


@dataclass
class PurgeResult:
    dry_run: bool = False
    stale: list[Shown] = field(default_factory=list)
    purged: list[Shown] = field(default_factory=list)
    attachments: int = 0
    phones: int = 0
    tipsters: int = 0
    sids: int = 0
    more: bool = False  # stopped at the limit: tips are still due

    @property
    def shredded_tips(self) -> int:
        return len(self.purged)

    @property
    def changed(self) -> bool:
        """Whether anything but old MessageSid hashes went (those go quietly, as before)."""
        return bool(self.stale or self.purged or self.attachments or self.phones or self.tipsters)

    def describe(self) -> str:
        would = self.dry_run
        lines = [
            f"{'would close' if would else 'closed'} {len(self.stale)} stale tips"
            f"{_codes(self.stale)}",
            f"{'would purge' if would else 'purged'} {len(self.purged)} closed tips"
            f"{_codes(self.purged)}",
            f"{'would shred' if would else 'shredded'} {self.attachments} attachments",
            f"{'would forget' if would else 'forgot'} {self.phones} phone numbers",
            f"{'would delete' if would else 'deleted'} {self.tipsters} sender records",
            f"{'would forget' if would else 'forgot'} {self.sids} old message ids",
        ]
        return "\n".join(lines)


def _codes(shown: Sequence[Shown]) -> str:
    if not shown:
        return ""
    return ": " + ", ".join(f"{slug} {code}" for slug, code in shown)


def apply_retention(
    session: Session,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    limit: int | None = None,
) -> PurgeResult:
    """Apply every school's retention rules now; with `dry_run`, only say what would go.

    The caller commits. Idempotent: what is purged is marked (`purged_at`, NULL ciphertext),
    so a second run finds nothing more. `limit` caps the tips purged in one call.
    """
    now = now or utcnow()
    result = PurgeResult(dry_run=dry_run)
    schools = session.scalars(select(School).order_by(School.slug)).all()
    for tip in _stale_tips(session, now):
        result.stale.append((tip.school.slug, tip.code))
        if not dry_run:
            _close_stale(session, tip, now)
    due = _due_tips(session, schools, now)
    if limit is not None and len(due) > limit:
        due, result.more = due[:limit], True
    result.purged = [(tip.school.slug, tip.code) for tip in due]
    purging = {tip.id for tip in due}
    result.attachments = _attachments(session, schools, now, purging, dry_run)
    result.phones = _phones(session, now, purging, dry_run)
    if not dry_run:
        for tip in due:
            _purge_tip(session, tip.id, now)
    result.tipsters = _tipsters(session, purging, dry_run)
    result.sids = _sids(session, now, dry_run)
    if not dry_run:
        _staff_traces(session, now)
    if not dry_run and result.changed:
        audit.record(
            session,
            "system",
            "retention.run",
            stale=len(result.stale),
            purged=len(result.purged),
            attachments=result.attachments,
            phones=result.phones,
            tipsters=result.tipsters,
        )
        session.flush()
        session.expire_all()
    return result


def run_daily(session: Session, now: datetime, limit: int = DAILY_BATCH) -> int:
    """The worker's daily run (a sweeper hook, under its lease); commits. Returns tips purged.

    The time of the last complete run is kept in the database, so it runs once a day across
    all workers and restarts; a run cut at `limit` continues on the next sweeper pass.
    """
    setting = session.get(Setting, LAST_RUN)
    last = _parse_time(setting.value if setting is not None else None)
    if last is not None and now - last < DAILY:
        return 0
    result = apply_retention(session, now, limit=limit)
    if not result.more:
        if setting is None:
            session.add(Setting(name=LAST_RUN, value=now.isoformat()))
        else:
            setting.value = now.isoformat()
    session.commit()
    return result.shredded_tips


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# -- which rows are due ------------------------------------------------------------------------


def _stale_tips(session: Session, now: datetime) -> Sequence[Tip]:
    return session.scalars(
        select(Tip)
        .where(
            Tip.status != "closed",
            Tip.legal_hold.is_(False),
            Tip.purged_at.is_(None),
            Tip.last_activity_at < now - STALE_AFTER,
        )
        .order_by(Tip.last_activity_at)
    ).all()


def _due_tips(session: Session, schools: Sequence[School], now: datetime) -> list[Tip]:
    due: list[Tip] = []
    closed_at = func.coalesce(Tip.closed_at, Tip.last_activity_at)
    for school in schools:
        due.extend(
            session.scalars(
                select(Tip)
                .where(
                    Tip.school_id == school.id,
                    Tip.status == "closed",
                    Tip.legal_hold.is_(False),
                    Tip.purged_at.is_(None),
                    closed_at < now - timedelta(days=school.retention_closed_days),
                )
                .order_by(closed_at)
            ).all()
        )
    return due


def _live(purging: Collection[str]) -> Any:
    """A tip that still needs its sender: not purged, and not being purged in this run."""
    live = Tip.purged_at.is_(None)
    return live & Tip.id.not_in(purging) if purging else live


# -- what purging does -------------------------------------------------------------------------


def _close_stale(session: Session, tip: Tip, now: datetime) -> None:
    audit.record(session, "system", "tip.closed_stale", tip.id, from_status=tip.status)
    tip.status, tip.closed_at = "closed", now


def _purge_tip(session: Session, tip_id: str, now: datetime) -> None:
    """Shred the tip and everything that quotes it; its clear columns stay for the counts."""
    keys: set[str] = set()
    for model in (Message, Note, Attachment, OutboundMessage):
        keys.update(
            session.scalars(
                select(model.data_key_id).where(
                    model.tip_id == tip_id, model.data_key_id.is_not(None)
                )
            )
        )
    tip_key = session.scalar(select(Tip.data_key_id).where(Tip.id == tip_id))
    if tip_key is not None:
        keys.add(tip_key)
    for reason_key, number_key in session.execute(
        select(Reveal.data_key_id, Reveal.number_key_id).where(Reveal.tip_id == tip_id)
    ):
        keys.update(k for k in (reason_key, number_key) if k is not None)
    session.execute(
        update(Message)
        .where(Message.tip_id == tip_id)
        .values({Message._body: None, Message.data_key_id: None})
    )
    session.execute(
        update(Note).where(Note.tip_id == tip_id).values({Note._body: None, Note.data_key_id: None})
    )
    session.execute(
        update(Reveal)
        .where(Reveal.tip_id == tip_id)
        .values(
            {
                Reveal._reason: None,
                Reveal.data_key_id: None,
                Reveal._number: None,
                Reveal.number_key_id: None,
            }
        )
    )
    _shred_attachments(session, Attachment.tip_id == tip_id)
    # A message never sent has nothing left to send: its send job must not find it owed.
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.tip_id == tip_id, OutboundMessage.status.in_(UNSENT))
        .values(status="canceled", updated_at=now)
    )
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.tip_id == tip_id)
        .values({OutboundMessage._body: None, OutboundMessage.data_key_id: None})
    )
    session.execute(
        update(Tip)
        .where(Tip.id == tip_id)
        .values({Tip._body: None, Tip._triage: None, Tip.data_key_id: None, Tip.purged_at: now})
    )
    # Keyed hashes of the places and people the tip named: the merging window is long over.
    session.execute(
        update(Incident)
        .where(Incident.id.in_(select(IncidentTip.incident_id).where(IncidentTip.tip_id == tip_id)))
        .values(keys=[])
    )
    session.execute(delete(InboundSid).where(InboundSid.tip_id == tip_id))
    if keys:
        session.execute(delete(DataKey).where(DataKey.id.in_(keys)))
    audit.record(session, "system", "tip.purged", tip_id)


def _shred_attachments(session: Session, where: Any) -> list[str]:
    keys = [
        k for k in session.scalars(select(Attachment.data_key_id).where(where)) if k is not None
    ]
    session.execute(
        update(Attachment)
        .where(where)
        .values(
            {
                Attachment._content: None,
                Attachment._source: None,
                Attachment.data_key_id: None,
                Attachment.status: "purged",
            }
        )
    )
    if keys:
        session.execute(delete(DataKey).where(DataKey.id.in_(keys)))
    return keys


def _attachments(
    session: Session,
    schools: Sequence[School],
    now: datetime,
    purging: Collection[str],
    dry_run: bool,
) -> int:
    """Attachments past their school's period, of tips not held (nor purged in this run)."""
    count = 0
    for school in schools:
        ids = session.scalars(
            select(Attachment.id)
            .join(Tip, Tip.id == Attachment.tip_id)
            .where(
                Tip.school_id == school.id,
                Tip.legal_hold.is_(False),
                _live(purging),
                Attachment.status != "purged",
                Attachment.created_at < now - timedelta(days=school.retention_attachment_days),
            )
        ).all()
        count += len(ids)
        if ids and not dry_run:
            _shred_attachments(session, Attachment.id.in_(ids))
            for att_id, tip_id in session.execute(
                select(Attachment.id, Attachment.tip_id).where(Attachment.id.in_(ids))
            ):
                audit.record(session, "system", "attachment.purged", tip_id, attachment_id=att_id)
    return count


def _phones(session: Session, now: datetime, purging: Collection[str], dry_run: bool) -> int:
    """Numbers whose conversations have been quiet for the longest period of their schools.

    Senders whose every tip goes in this run are left to `_tipsters`. A number with a tip
    under legal hold is kept. A blocked number keeps its hash, so the block holds.
    """
    rows = session.execute(
        select(
            Tipster.id,
            Tipster.blocked,
            func.max(Tip.last_activity_at),
            func.max(School.retention_phone_days),
            func.max(case((Tip.legal_hold, 1), else_=0)),
        )
        .join(Tip, Tip.tipster_id == Tipster.id)
        .join(School, School.id == Tip.school_id)
        .where(
            Tipster.kind == "sms",
            _live(purging),
            Tipster._phone.is_not(None) | (Tipster.phone_hash.is_not(None) & ~Tipster.blocked),
        )
        .group_by(Tipster.id, Tipster.blocked)
    ).all()
    due = [
        (tipster_id, blocked)
        for tipster_id, blocked, last, days, held in rows
        if not held and last < now - timedelta(days=days)
    ]
    if not dry_run:
        for tipster_id, blocked in due:
            _forget_phone(session, tipster_id, keep_hash=blocked)
    return len(due)


def _forget_phone(session: Session, tipster_id: str, *, keep_hash: bool) -> None:
    key = session.scalar(select(Tipster.data_key_id).where(Tipster.id == tipster_id))
    values: dict[Any, Any] = {Tipster._phone: None, Tipster.data_key_id: None}
    if not keep_hash:
        values[Tipster.phone_hash] = None
    session.execute(update(Tipster).where(Tipster.id == tipster_id).values(values))
    if key is not None:
        session.execute(delete(DataKey).where(DataKey.id == key))


def _tipsters(session: Session, purging: Collection[str], dry_run: bool) -> int:
    """Senders no unpurged tip needs: deleted, or (a blocked number) reduced to its hash.

    A blocked web receipt goes like any other: it opens only the tips it sent.
    """
    needed = exists().where(Tip.tipster_id == Tipster.id, _live(purging))
    keeps_block = Tipster.blocked & (Tipster.kind == "sms") & Tipster.phone_hash.is_not(None)
    only_hash = keeps_block & Tipster._phone.is_(None) & Tipster.data_key_id.is_(None)
    rows = session.execute(
        select(Tipster.id, keeps_block.label("keeps_block")).where(~needed, ~only_hash)
    ).all()
    if dry_run:
        return len(rows)
    for tipster_id, block in rows:
        if block:
            _forget_phone(session, tipster_id, keep_hash=True)
            continue
        key = session.scalar(select(Tipster.data_key_id).where(Tipster.id == tipster_id))
        session.execute(update(Tip).where(Tip.tipster_id == tipster_id).values(tipster_id=None))
        session.execute(delete(Tipster).where(Tipster.id == tipster_id))
        if key is not None:
            session.execute(delete(DataKey).where(DataKey.id == key))
    return len(rows)


def _sids(session: Session, now: datetime, dry_run: bool) -> int:
    old = InboundSid.created_at < now - REPLAY_WINDOW
    if dry_run:
        return int(session.scalar(select(func.count()).select_from(InboundSid).where(old)) or 0)
    result = session.execute(delete(InboundSid).where(old))
    return int(getattr(result, "rowcount", 0) or 0)


def _staff_traces(session: Session, now: datetime) -> None:
    """Staff sign-in's leftovers: an address's failures lapse a day after the last one, and a
    session is dead 12 hours after it began (staff/signin.py, staff/sessions.py)."""
    session.execute(delete(SigninAddress).where(SigninAddress.last_failed_at < now - STAFF_TRACES))
    session.execute(delete(StaffSession).where(StaffSession.created_at < now - STAFF_TRACES))
