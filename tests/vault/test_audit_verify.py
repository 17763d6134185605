"""`tipline audit verify`: a whole chain exits 0; an edit or a deletion names the first broken
entry and exits 1; retention leaves the chain whole."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import delete, select, update

from tests.support.admin import make_tip
from tipline.cli import main
from tipline.db import utcnow
from tipline.extensions import dbsession
from tipline.models import AuditEvent, Tip
from tipline.vault import audit
from tipline.vault.retention import apply_retention


def verify(env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["audit", "verify"], env=env, catch_exceptions=False)


def write_chain(app: Flask, n: int = 6) -> list[int]:
    """`n` sealed events; returns their ids in chain order."""
    with app.app_context():
        session = dbsession()
        for i in range(n):
            audit.record(session, f"user:{i}", "tip.viewed", None, n=i, note="ids only")
        session.commit()
        while audit.seal_pending(session):
            session.commit()
        return list(session.scalars(select(AuditEvent.id).order_by(AuditEvent.chain_seq)))


def test_a_whole_chain_verifies(app: Flask, env: dict[str, str]) -> None:
    ids = write_chain(app)
    result = verify(env)
    assert result.exit_code == 0, result.output
    assert f"audit chain whole: {len(ids)} entries verified" in result.output


def test_editing_one_entrys_details_names_that_entry(app: Flask, env: dict[str, str]) -> None:
    ids = write_chain(app)
    with app.app_context():
        session = dbsession()
        session.execute(update(AuditEvent).where(AuditEvent.id == ids[3]).values(detail={"n": 99}))
        session.commit()
    result = verify(env)
    assert result.exit_code == 1
    assert f"broken at entry {ids[3]} " in result.output
    assert "changed after it was written" in result.output
    assert "3 entries before it verified" in result.output


def test_rewriting_an_entry_and_its_hash_is_caught_at_the_next(
    app: Flask, env: dict[str, str]
) -> None:
    """An attacker who recomputes the edited entry's own hash breaks the link to the next one."""
    ids = write_chain(app)
    with app.app_context():
        session = dbsession()
        event = session.get(AuditEvent, ids[2])
        assert event is not None
        event.actor = "user:someone-else"
        event.hash = audit._digest(event.prev_hash or audit.GENESIS, event)
        session.commit()
    result = verify(env)
    assert result.exit_code == 1
    assert f"broken at entry {ids[3]} " in result.output


def test_deleting_a_middle_entry_names_the_entry_after_the_gap(
    app: Flask, env: dict[str, str]
) -> None:
    ids = write_chain(app)
    with app.app_context():
        session = dbsession()
        session.execute(delete(AuditEvent).where(AuditEvent.id == ids[2]))
        session.commit()
    result = verify(env)
    assert result.exit_code == 1
    assert f"broken at entry {ids[3]} " in result.output
    assert "entries are missing" in result.output


def test_entries_not_chained_yet_are_counted_not_failed(app: Flask, env: dict[str, str]) -> None:
    write_chain(app, 3)
    with app.app_context():
        audit.record(dbsession(), "user:9", "tip.viewed")
        dbsession().commit()
    result = verify(env)
    assert result.exit_code == 0, result.output
    assert "3 entries verified; 1 newer entries not chained yet" in result.output


def test_an_empty_log_verifies(app: Flask, env: dict[str, str]) -> None:
    with app.app_context():
        dbsession().execute(delete(AuditEvent))
        dbsession().commit()
    result = verify(env)
    assert result.exit_code == 0, result.output
    assert "0 entries verified" in result.output


def test_a_long_chain_streams_and_verifies(app: Flask, env: dict[str, str]) -> None:
    """More entries than one fetch batch: the walk crosses batches without losing its place."""
    write_chain(app, audit.VERIFY_BATCH * 2 + 7)
    with app.app_context():
        check = audit.verify_chain(dbsession())
    assert check.ok
    assert check.checked >= audit.VERIFY_BATCH * 2 + 7


def test_the_retention_purge_keeps_the_chain_verifiable(app: Flask, env: dict[str, str]) -> None:
    tip_id = make_tip(app, "someone is selling vapes in the B hall", age=timedelta(days=800))
    with app.app_context():
        session = dbsession()
        audit.record(session, "user:1", "tip.viewed", tip_id)
        session.execute(
            update(Tip)
            .where(Tip.id == tip_id)
            .values(status="closed", closed_at=utcnow() - timedelta(days=700))
        )
        session.commit()
        audit.seal_pending(session)
        session.commit()
        result = apply_retention(session)
        session.commit()
        assert result.shredded_tips == 1
        audit.seal_pending(session)
        session.commit()
    cli = verify(env)
    assert cli.exit_code == 0, cli.output
