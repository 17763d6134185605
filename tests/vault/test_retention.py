"""Retention per school: what a purge leaves in a full dump, dry runs, legal hold, stale tips."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select, update

from tests.support.admin import add_attachment, make_tip
from tipline.cli import main
from tipline.db import new_id, utcnow
from tipline.extensions import db, dbsession
from tipline.intake import records
from tipline.models import (
    Attachment,
    AuditEvent,
    InboundSid,
    Incident,
    IncidentTip,
    Note,
    School,
    Setting,
    Tip,
    Tipster,
    User,
)
from tipline.outbox.messages import queue_outbound
from tipline.platform import sweeper
from tipline.platform.services import services
from tipline.staff import casework, dashboard
from tipline.staff.access import NotPermitted
from tipline.staff.accounts import upsert_user
from tipline.vault import audit
from tipline.vault.retention import LAST_RUN, apply_retention, run_daily
from workers.runner import retention_pass, sweep_hooks

PHONE = "+15551230101"
OTHER_PHONE = "+15551230102"


def set_retention(app: Flask, slug: str, **days: int) -> None:
    """What `tipline init` writes for `retention = {...}` in the school's config entry."""
    with app.app_context():
        values = {f"retention_{k}": v for k, v in days.items()}
        db.session.execute(update(School).where(School.slug == slug).values(**values))
        db.session.commit()


def close(app: Flask, tip_id: str, ago: timedelta) -> None:
    with app.app_context():
        db.session.execute(
            update(Tip).where(Tip.id == tip_id).values(status="closed", closed_at=utcnow() - ago)
        )
        db.session.commit()


def login(app: Flask, role: str = "district", schools: list[str] | None = None) -> int:
    with app.app_context():
        user, _ = upsert_user(
            dbsession(),
            services(app).vault,
            email=f"{role}@example.org",
            role=role,
            password="correct horse battery staple",
            schools=schools or [],
        )
        db.session.commit()
        return user.id


def purge(app: Flask, now: datetime | None = None, **kw: Any) -> Any:
    with app.app_context():
        result = apply_retention(dbsession(), now, **kw)
        db.session.commit()
        return result


def tip_row(app: Flask, tip_id: str) -> Tip:
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        dbsession().expunge(tip)
        return tip


def readable(app: Flask, tip_id: str) -> str | None:
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        if tip.data_key is None:
            return None
        return records.tip_text(services(app).vault, tip)


def full_case(app: Flask, tip_id: str, text: str) -> None:
    """Everything that quotes or identifies a tip: follow-up, staff reply (and its SMS), an
    alert's excerpt, a note, an attachment, an incident's keys, a MessageSid hash."""
    add_attachment(app, tip_id, b"%PDF-1.4 a picture of the note", "application/pdf")
    with app.app_context():
        session, vault = dbsession(), services(app).vault
        tip = session.get(Tip, tip_id)
        assert tip is not None
        now = utcnow()
        records.add_message(
            session, vault, tip, direction="in", channel="sms", text=text + " again", now=now
        )
        casework.send_reply(session, vault, tip, "Thank you, we are on it.", now=now)
        queue_outbound(
            session,
            vault,
            channel="email",
            purpose="alert",
            to_label="patel",
            summary=f"CRITICAL weapon {tip.code}",
            body=f"CRITICAL weapon {tip.code}: {text}",
            now=now,
            tip_id=tip.id,
        )
        note = Note(id=new_id(), tip_id=tip.id, data_key=vault.new_data_key(), created_at=now)
        vault.put(note, "body", "talked to the counselor about " + text)
        session.add(note)
        incident = Incident(
            id=new_id(),
            school_id=tip.school_id,
            severity=tip.severity,
            category=tip.category,
            keys=["place:" + "a" * 64, "person:" + "b" * 64],
            signals=["now"],
        )
        session.add(incident)
        session.flush()
        session.add(IncidentTip(tip_id=tip.id, incident_id=incident.id, paged=True))
        session.add(InboundSid(sid_hash="c" * 64, tip_id=tip.id, reply_kind="tip"))
        session.commit()


def dump(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as a stolen database dump would hold them."""
    with app.app_context():
        out: dict[str, list[dict[str, Any]]] = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(select(table)).mappings().all()
            out[table.name] = [
                {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}
                for row in rows
            ]
        db.session.rollback()
        return out


@dataclass
class Traces:
    keys: set[str]
    blobs: set[bytes]
    tipster_id: str | None
    phone_hash: str | None


def traces_of(snapshot: dict[str, list[dict[str, Any]]], tip_id: str) -> Traces:
    """The data keys and ciphertext a dump holds for one tip and its sender."""
    (tip,) = [r for r in snapshot["tip"] if r["id"] == tip_id]
    rows = [tip] + [r for rows in snapshot.values() for r in rows if r.get("tip_id") == tip_id]
    sender = [r for r in snapshot["tipster"] if r["id"] == tip["tipster_id"]]
    rows += sender
    keys = {r["data_key_id"] for r in rows if r.get("data_key_id")}
    blobs = {v for r in rows for v in r.values() if isinstance(v, bytes)}
    hash_ = sender[0]["phone_hash"] if sender else None
    return Traces(keys, blobs, tip["tipster_id"], hash_)


def test_purge_leaves_nothing_readable_of_the_tip_and_keeps_the_counts(app: Flask) -> None:
    """The must-show: after purging, a full dump holds no ciphertext of the tip whose data key
    still exists, its sender's row is gone, the audit chain verifies, the dashboard agrees."""
    set_retention(app, "lincoln", closed_days=3)
    text = "he showed me a gun in his backpack by the bus loop"
    gone = make_tip(app, text, phone=PHONE, age=timedelta(days=10))
    full_case(app, gone, text)
    kept = make_tip(app, "someone is selling vapes in the B hall", phone=OTHER_PHONE)
    close(app, gone, timedelta(days=5))
    user_id = login(app)
    with app.app_context():
        audit.seal_pending(dbsession())
        db.session.commit()
        user = dbsession().get(User, user_id)
        assert user is not None
        now = utcnow()
        before_board = dashboard.build(dbsession(), user, now)
    before = dump(app)
    traces = traces_of(before, gone)
    assert len(traces.keys) >= 7  # tip, follow-up, reply, two outbound bodies, note, attachment
    assert traces.tipster_id is not None
    assert traces.phone_hash is not None

    result = purge(app)
    assert [code for _, code in result.purged] == [tip_row(app, gone).code]

    after = dump(app)
    assert not traces.keys & {r["id"] for r in after["data_key"]}
    for table, rows in after.items():
        for row in rows:
            for value in row.values():
                if isinstance(value, str):
                    assert value not in traces.keys, f"{table} still names a shredded key"
                    assert value != traces.phone_hash, f"{table} still holds the sender's hash"
                if isinstance(value, bytes):
                    assert value not in traces.blobs, f"{table} still holds the tip's ciphertext"
            if row.get("tip_id") == gone or (table == "tip" and row["id"] == gone):
                assert not [v for v in row.values() if isinstance(v, bytes)], table
    assert traces.tipster_id not in {r["id"] for r in after["tipster"]}
    assert all(r["keys"] == [] for r in after["incident"])
    assert not [r for r in after["inbound_sid"] if r["tip_id"] == gone]
    assert {r["id"] for r in after["tip"]} == {r["id"] for r in before["tip"]}
    assert readable(app, kept) == "someone is selling vapes in the B hall"

    with app.app_context():
        session = dbsession()
        audit.seal_pending(session)
        session.commit()
        assert audit.verify_chain(session).ok
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.tip_id == gone))
        assert "tip.purged" in set(actions)
        user = session.get(User, user_id)
        assert user is not None
        after_board = dashboard.build(session, user, now)
    assert after_board.counts == before_board.counts
    assert after_board.unacked_critical == before_board.unacked_critical
    assert (after_board.acted_on, after_board.untouched) == (
        before_board.acted_on,
        before_board.untouched,
    )
    assert purge(app).shredded_tips == 0  # idempotent


def test_a_sender_still_needed_by_a_live_tip_keeps_its_number(app: Flask) -> None:
    set_retention(app, "lincoln", closed_days=3)
    old = make_tip(app, "a fight behind the gym", phone=PHONE, age=timedelta(days=10))
    live = make_tip(app, "the fight is happening again")
    with app.app_context():
        # One sender, two tips, as SMS intake threads a number's texts.
        sender = dbsession().get(Tip, old)
        assert sender is not None
        db.session.execute(update(Tip).where(Tip.id == live).values(tipster_id=sender.tipster_id))
        db.session.commit()
        tipster_id = sender.tipster_id
    close(app, old, timedelta(days=5))
    result = purge(app)
    assert result.shredded_tips == 1
    assert result.tipsters == 0
    with app.app_context():
        tipster = dbsession().get(Tipster, tipster_id)
        assert tipster is not None
        assert services(app).vault.get_text(tipster, "phone") == PHONE
    assert readable(app, old) is None
    assert readable(app, live) == "the fight is happening again"


def test_a_blocked_sender_keeps_only_its_hash(app: Flask) -> None:
    set_retention(app, "lincoln", closed_days=3)
    tip_id = make_tip(app, "prank prank prank", phone=PHONE, age=timedelta(days=10))
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        db.session.execute(update(Tipster).where(Tipster.id == tip.tipster_id).values(blocked=True))
        db.session.commit()
        tipster_id = tip.tipster_id
    close(app, tip_id, timedelta(days=5))
    purge(app)
    with app.app_context():
        session = dbsession()
        tipster = session.get(Tipster, tipster_id)
        assert tipster is not None
        assert tipster.blocked
        assert tipster._phone is None
        assert tipster.data_key_id is None
        assert tipster.phone_hash == services(app).vault.lookup_hash(session, "phone", PHONE)
    again = purge(app)
    assert (again.tipsters, again.phones) == (0, 0)  # the hash stays while the block does
    with app.app_context():
        assert dbsession().get(Tipster, tipster_id) is not None


def test_a_blocked_web_receipt_goes_with_its_tip(app: Flask) -> None:
    set_retention(app, "lincoln", closed_days=3)
    tip_id = make_tip(app, "prank prank prank", age=timedelta(days=10))
    with app.app_context():
        receipt = Tipster(id=new_id(), kind="web", receipt_hash="d" * 64, blocked=True)
        dbsession().add(receipt)
        db.session.execute(update(Tip).where(Tip.id == tip_id).values(tipster_id=receipt.id))
        db.session.commit()
        receipt_id = receipt.id
    close(app, tip_id, timedelta(days=5))
    assert purge(app).tipsters == 1
    with app.app_context():
        assert dbsession().get(Tipster, receipt_id) is None


def test_dry_run_says_what_would_go_and_changes_nothing(app: Flask, env: dict[str, str]) -> None:
    set_retention(app, "lincoln", closed_days=3)
    tip_id = make_tip(app, "my friend said she wants to die", phone=PHONE, age=timedelta(days=9))
    close(app, tip_id, timedelta(days=5))
    stale = make_tip(app, "graffiti in the annex", age=timedelta(days=400))
    before = dump(app)
    code, stale_code = tip_row(app, tip_id).code, tip_row(app, stale).code

    result = purge(app, dry_run=True)
    assert result.purged == [("lincoln", code)]
    assert result.stale == [("lincoln", stale_code)]
    assert result.tipsters == 1
    cli = CliRunner().invoke(main, ["purge", "--dry-run"], env=env, catch_exceptions=False)
    assert cli.exit_code == 0, cli.output
    assert f"would purge 1 closed tips: lincoln {code}" in cli.output
    assert f"would close 1 stale tips: lincoln {stale_code}" in cli.output
    assert "would delete 1 sender records" in cli.output
    assert dump(app) == before
    assert readable(app, tip_id) == "my friend said she wants to die"

    cli = CliRunner().invoke(main, ["purge"], env=env, catch_exceptions=False)
    assert cli.exit_code == 0, cli.output
    assert f"purged 1 closed tips: lincoln {code}" in cli.output
    assert readable(app, tip_id) is None


def test_legal_hold_exempts_a_tip_and_is_audited(app: Flask) -> None:
    set_retention(app, "lincoln", closed_days=3, attachment_days=1, phone_days=1)
    held = make_tip(app, "the coach touched my friend", phone=PHONE, age=timedelta(days=10))
    add_attachment(app, held, b"%PDF-1.4 screenshot", "application/pdf")
    close(app, held, timedelta(days=5))
    stale = make_tip(app, "old report", age=timedelta(days=400))
    admin_id, counselor_id = login(app, "admin", ["lincoln"]), login(app, "counselor", ["lincoln"])
    with app.app_context():
        session = dbsession()
        counselor = session.get(User, counselor_id)
        admin = session.get(User, admin_id)
        assert counselor is not None
        assert admin is not None
        with pytest.raises(NotPermitted):
            casework.set_legal_hold(session, counselor, session.get(Tip, held), True, utcnow())
        for tip_id in (held, stale):
            tip = session.get(Tip, tip_id)
            assert tip is not None
            assert casework.set_legal_hold(session, admin, tip, True, utcnow())
        db.session.commit()
        held_events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.tip_id == held, AuditEvent.action == "tip.legal_hold"
            )
        ).all()
        assert [e.actor for e in held_events] == [f"user:{admin_id}"]

    result = purge(app)
    assert (result.purged, result.stale, result.attachments, result.phones) == ([], [], 0, 0)
    assert readable(app, held) == "the coach touched my friend"
    assert tip_row(app, stale).status == "new"
    with app.app_context():
        att = dbsession().scalars(select(Attachment).where(Attachment.tip_id == held)).one()
        assert services(app).vault.get_bytes(att, "content") == b"%PDF-1.4 screenshot"
        tip = dbsession().get(Tip, held)
        admin = dbsession().get(User, admin_id)
        assert tip is not None
        assert admin is not None
        assert casework.set_legal_hold(dbsession(), admin, tip, False, utcnow())
        db.session.commit()
    assert purge(app).shredded_tips == 1
    assert readable(app, held) is None


def test_an_open_tip_quiet_for_a_year_is_closed_as_stale_then_follows_the_closed_rule(
    app: Flask,
) -> None:
    stale = make_tip(app, "someone keyed my car", age=timedelta(days=366))
    recent = make_tip(app, "someone keyed my bike", age=timedelta(days=300))
    result = purge(app)
    assert [code for _, code in result.stale] == [tip_row(app, stale).code]
    assert result.shredded_tips == 0
    tip = tip_row(app, stale)
    assert tip.status == "closed"
    assert tip.closed_at is not None
    assert tip_row(app, recent).status == "new"
    assert readable(app, stale) == "someone keyed my car"
    with app.app_context():
        actions = dbsession().scalars(select(AuditEvent.action).where(AuditEvent.tip_id == stale))
        assert "tip.closed_stale" in set(actions)

    assert purge(app, utcnow() + timedelta(days=364)).shredded_tips == 0
    assert purge(app, utcnow() + timedelta(days=366)).shredded_tips == 1
    assert readable(app, stale) is None


def test_each_school_keeps_tips_attachments_and_numbers_for_its_own_periods(app: Flask) -> None:
    set_retention(app, "lincoln", closed_days=3, attachment_days=5, phone_days=7)
    lincoln = make_tip(app, "fight at the pit", phone=PHONE, age=timedelta(days=10))
    washington = make_tip(
        app, "fight at recess", "washington", phone=OTHER_PHONE, age=timedelta(days=10)
    )
    open_lincoln = make_tip(app, "vapes in the annex", phone="+15551230103", age=timedelta(days=10))
    for tip_id in (lincoln, washington, open_lincoln):
        add_attachment(app, tip_id, b"%PDF-1.4 " + tip_id.encode(), "application/pdf")
    with app.app_context():
        db.session.execute(update(Attachment).values(created_at=utcnow() - timedelta(days=10)))
        db.session.commit()
    for tip_id in (lincoln, washington):
        close(app, tip_id, timedelta(days=5))

    result = purge(app)
    assert result.purged == [("lincoln", tip_row(app, lincoln).code)]
    assert result.attachments == 1  # open_lincoln's; lincoln's went with its tip
    assert result.phones == 1  # open_lincoln's sender: quiet for 10 days, lincoln keeps 7
    assert readable(app, lincoln) is None
    assert readable(app, washington) == "fight at recess"
    assert readable(app, open_lincoln) == "vapes in the annex"
    with app.app_context():
        session, vault = dbsession(), services(app).vault
        atts = {a.tip_id: a for a in session.scalars(select(Attachment))}
        assert atts[open_lincoln].status == "purged"
        assert atts[open_lincoln]._content is None
        assert atts[open_lincoln].data_key_id is None
        assert vault.get_bytes(atts[washington], "content") == b"%PDF-1.4 " + washington.encode()
        senders = {
            t.id: session.get(Tipster, t.tipster_id)
            for t in session.scalars(select(Tip).where(Tip.tipster_id.is_not(None)))
        }
        assert lincoln not in senders  # its sender's row went with it
        quiet = senders[open_lincoln]
        assert quiet is not None
        assert (quiet._phone, quiet.phone_hash, quiet.data_key_id) == (None, None, None)
        other = senders[washington]
        assert other is not None
        assert vault.get_text(other, "phone") == OTHER_PHONE
    # Washington's defaults: the closed tip goes a year after closing.
    later = purge(app, utcnow() + timedelta(days=361))
    assert later.purged == [("washington", tip_row(app, washington).code)]


def test_the_worker_purges_once_a_day(app: Flask) -> None:
    assert "retention" in sweep_hooks()
    set_retention(app, "lincoln", closed_days=3)
    first = make_tip(app, "first", age=timedelta(days=10))
    close(app, first, timedelta(days=5))
    now = utcnow()
    with app.app_context():
        assert run_daily(dbsession(), now) == 1
        setting = dbsession().get(Setting, LAST_RUN)
        assert setting is not None
    second = make_tip(app, "second", age=timedelta(days=10))
    close(app, second, timedelta(days=5))
    with app.app_context():
        assert run_daily(dbsession(), now + timedelta(hours=23)) == 0
        assert run_daily(dbsession(), now + timedelta(hours=25)) == 1


def test_the_sweeper_runs_the_daily_purge_under_its_lease(app: Flask) -> None:
    set_retention(app, "lincoln", closed_days=3)
    tip_id = make_tip(app, "graffiti in the pit", age=timedelta(days=10))
    close(app, tip_id, timedelta(days=5))
    with app.app_context():
        result = sweeper.sweep_once(
            dbsession(),
            "test-holder",
            utcnow(),
            lambda _tip, _code: False,
            lambda _att: False,
            hooks={"retention": retention_pass},
        )
    assert result.held
    assert result.extra == {"retention": 1}
    assert readable(app, tip_id) is None


def test_the_daily_run_continues_in_batches(app: Flask) -> None:
    set_retention(app, "lincoln", closed_days=3)
    for n in range(3):
        tip_id = make_tip(app, f"tip {n}", age=timedelta(days=10))
        close(app, tip_id, timedelta(days=5))
    now = utcnow()
    with app.app_context():
        assert run_daily(dbsession(), now, limit=2) == 2
        assert dbsession().get(Setting, LAST_RUN) is None  # not done for the day yet
        assert run_daily(dbsession(), now, limit=2) == 1
        assert dbsession().get(Setting, LAST_RUN) is not None
        assert all(t.purged_at is not None for t in dbsession().scalars(select(Tip)))
        assert dbsession().scalars(select(Tip.data_key_id)).all() == [None] * 3


def test_export_corrections_warns_that_its_file_holds_tip_text(
    app: Flask, env: dict[str, str], tmp_path: Any
) -> None:
    out = tmp_path / "corrections.jsonl"
    cli = CliRunner().invoke(
        main, ["export-corrections", "-o", str(out)], env=env, catch_exceptions=False
    )
    assert cli.exit_code == 0, cli.output
    assert "holds tip text" in cli.stderr
    assert out.read_text() == ""
