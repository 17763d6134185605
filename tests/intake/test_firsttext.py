"""A new phone's first text: the one-statement path writes what the general path writes.

On PostgreSQL (CI) the webhook stores a first text with `tipline.intake.firsttext`; on SQLite with
the general path. Either way the rows, the sealed values and the reply must be the same, and
the hand-off must reach the worker as a routing job.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from tests.conftest import sms_params
from tests.support.wait import wait_for
from tipline.extensions import db
from tipline.intake import firsttext, records
from tipline.models import AuditEvent, DataKey, InboundSid, Tip, Tipster, TwilioForget
from tipline.platform.services import ALERTS_QUEUE, services
from workers.runner import Dispatcher

TEXT = "he said he is bringing a knife to the game friday"
CODE = re.compile(r"\bT\d{4,}\b")


def first_text(client: FlaskClient, phone: str, text: str = TEXT) -> str:
    resp = client.post("/sms/inbound", data=sms_params(text, from_=phone))
    assert resp.status_code == 200
    found = CODE.search(resp.get_data(as_text=True))
    assert found is not None
    return found.group(0)


def stored(app: Flask, code: str) -> dict[str, Any]:
    """Everything a first text leaves in the database, decrypted, minus ids and times."""
    with app.app_context():
        vault = services(app).vault
        tip = db.session.scalars(select(Tip).where(Tip.code == code)).one()
        tipster = db.session.get(Tipster, tip.tipster_id)
        assert tipster is not None
        assert tipster.data_key is not None
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.tip_id == tip.id)).all()
        sids = db.session.scalars(select(InboundSid).where(InboundSid.tip_id == tip.id)).all()
        phone = vault.open_for(
            "tipster", "phone", tipster.id, tipster.data_key, tipster._phone or b""
        )
        return {
            "tip": {
                c: getattr(tip, c)
                for c in ("source", "severity", "category", "language", "status")
                + ("needs_routing", "message_count", "routed_at", "school_id")
            },
            "body": records.tip_text(vault, tip),
            "triage": records.tip_triage(vault, tip),
            "own_key": tip.data_key is not None and tip.data_key_id != tipster.data_key_id,
            "tipster": (tipster.kind, tipster.language, tipster.blocked, phone.decode()),
            "events": [(e.actor, e.action, {**e.detail, "code": "-"}) for e in events],
            "code_in_event": [e.detail.get("code") for e in events] == [code],
            "sids": [s.reply_kind for s in sids],
        }


def wait_for_job(app: Flask, job_id: str) -> list[str]:
    queue = services(app).queue(ALERTS_QUEUE)
    wait_for(lambda: job_id in queue.get_job_ids(), 10, "the routing job to be queued")
    time.sleep(0.5)  # room for a second, duplicate job to show up
    return list(queue.get_job_ids())


def newest_forget(app: Flask) -> dict[str, Any]:
    """The newest message to delete at Twilio, decrypted, minus ids and times."""
    with app.app_context():
        row = db.session.scalars(
            select(TwilioForget).order_by(TwilioForget.created_at.desc()).limit(1)
        ).one()
        sid = services(app).vault.get_text(row, "sid") or ""
        return {
            "sid": sid.startswith("SM") and len(sid) == 34,
            "refs": (row.outbound_id, row.tip_id, row.attempts),
            "first_try": row.not_before - row.created_at,
            "own_key": row.data_key_id is not None,
        }


def test_first_text_rows_are_the_same_on_either_path(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = stored(app, first_text(client, "+15551239001"))
    fast["forget"] = newest_forget(app)
    monkeypatch.setattr(firsttext, "supported", lambda _bind: False)
    general = stored(app, first_text(client, "+15551239002"))
    general["forget"] = newest_forget(app)
    assert fast["forget"]["sid"]
    fast["tipster"] = fast["tipster"][:3] + ("+15551239002",)
    assert fast == general
    assert fast["body"] == TEXT
    assert fast["tip"]["severity"] == "critical"
    assert fast["code_in_event"]
    assert fast["own_key"]


def test_taken_codes_are_skipped_and_a_known_phone_threads(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = first_text(client, "+15551239003")

    def draws() -> Iterator[str]:
        yield from (taken, taken, "T98765")

    monkeypatch.setattr(records, "candidate_codes", draws)
    assert first_text(client, "+15551239004") == "T98765"
    # The phone is known now: its next text is a follow-up of the same tip, not a new one.
    assert first_text(client, "+15551239004", "also he showed it to me at lunch") == "T98765"
    with app.app_context():
        tip = db.session.scalars(select(Tip).where(Tip.code == "T98765")).one()
        assert tip.message_count == 2


def test_the_worker_dispatcher_turns_a_hand_off_into_the_routing_job(
    app: Flask, client: FlaskClient
) -> None:
    dispatcher = Dispatcher(app)
    dispatcher.start()
    try:
        assert dispatcher.ready(10), "the route listener never started listening"
        code = first_text(client, "+15551239005")
        with app.app_context():
            tip_id = db.session.scalars(select(Tip.id).where(Tip.code == code)).one()
        assert f"route-{tip_id}" in wait_for_job(app, f"route-{tip_id}")
    finally:
        dispatcher.stopping.set()
        dispatcher.join(timeout=5)
    assert not dispatcher.is_alive()


def test_two_workers_queue_one_routing_job_per_tip(app: Flask, client: FlaskClient) -> None:
    dispatchers = [Dispatcher(app), Dispatcher(app)]
    for d in dispatchers:
        d.start()
    try:
        assert all(d.ready(10) for d in dispatchers)
        code = first_text(client, "+15551239020")
        with app.app_context():
            tip_id = db.session.scalars(select(Tip.id).where(Tip.code == code)).one()
        assert wait_for_job(app, f"route-{tip_id}").count(f"route-{tip_id}") == 1
    finally:
        for d in dispatchers:
            d.stopping.set()
        for d in dispatchers:
            d.join(timeout=10)


def test_a_tip_texted_while_no_worker_ran_is_routed_when_one_starts(
    app: Flask, client: FlaskClient
) -> None:
    code = first_text(client, "+15551239021")
    with app.app_context():
        tip_id = db.session.scalars(select(Tip.id).where(Tip.code == code)).one()
    dispatcher = Dispatcher(app)
    dispatcher.start()
    try:
        assert wait_for_job(app, f"route-{tip_id}").count(f"route-{tip_id}") == 1
    finally:
        dispatcher.stopping.set()
        dispatcher.join(timeout=10)


def test_every_code_drawn_taken_falls_back_without_an_orphan_key(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = first_text(client, "+15551239006")
    with app.app_context():
        fast = firsttext.supported(db.engine)
    # On PostgreSQL the one-statement path draws first and finds every code taken; the general
    # path then draws again. SQLite has only the general path.
    rounds = iter([[taken, taken]] * fast + [[taken, "T55555"]])

    def draws() -> Iterator[str]:
        yield from next(rounds, ["T66666"])

    monkeypatch.setattr(records, "candidate_codes", draws)
    assert first_text(client, "+15551239007") == "T55555"
    with app.app_context():
        keys = db.session.scalar(select(func.count()).select_from(DataKey))
        used = sum(
            db.session.scalar(select(func.count()).select_from(m).where(m.data_key_id.is_not(None)))
            or 0
            for m in (Tip, Tipster, TwilioForget)
        )
        assert keys == used  # every data key seals a row; none was left behind


def test_a_dropped_database_connection_costs_one_text_not_the_next(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The server restarts under a warm pool: the text in flight is answered from the spool
    (an 8-digit code), the log says the database was unavailable, the next text is a tip,
    and the spooled one is stored after it."""
    first_text(client, "+15551239010")
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("only PostgreSQL connections can be dropped by the server")
        warm = [db.engine.connect() for _ in range(3)]  # several pooled connections to lose
        for conn in warm:
            conn.close()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            killed = admin.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        db.session.remove()
    assert killed >= 1
    resp = client.post("/sms/inbound", data=sms_params(TEXT, from_="+15551239011"))
    assert resp.status_code == 200
    assert "911" in resp.get_data(as_text=True)
    assert re.search(r"T\d{8}\b", resp.get_data(as_text=True))
    assert "database unavailable" in caplog.text
    assert TEXT not in caplog.text
    assert "9011" not in caplog.text
    code = first_text(client, "+15551239012")
    assert stored(app, code)["body"] == TEXT
    wait_for(lambda: services(app).spool.size() == 0, 20, "the spooled text to be stored")
