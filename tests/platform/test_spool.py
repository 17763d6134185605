"""The spool itself: encrypted, durable files, drained once under a lock, by the web process too.

The outage end to end (PostgreSQL really gone) is in test_spool_outage.py; here the database
stays up and texts are put in the spool as the webhook does when it is down.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import TEST_KEY_1, TEST_KEY_2, app_for, post_signed, sms_params, twiml_text
from tests.support.wait import wait_for
from tests.support.web import submit_tip
from tipline.cli.assemble import build_app
from tipline.db import utcnow
from tipline.extensions import db
from tipline.intake import outage, records, web
from tipline.intake.student_sms import SmsOutcome
from tipline.models import InboundSid, Tip
from tipline.platform.services import services
from tipline.platform.spool import Spool
from tipline.settings import parse_master_keys
from tipline.vault.crypto import MasterKeyring
from tipline.web.sms.drainer import drain_now

TEXT = "a kid in my class is being hit by his dad"
PHONE = "+15551239876"


@pytest.fixture
def spool_app(env: dict[str, str], tmp_path: Path) -> Iterator[Flask]:
    """The test's app with a spool of its own."""
    with app_for({**env, "TIPLINE_SPOOL_DIR": str(tmp_path / "spool")}) as app:
        yield app


def spool_text(app: Flask, body: str = TEXT, sid: str | None = None) -> SmsOutcome:
    """What the webhook does with a text when the database is down (it is not needed)."""
    params = sms_params(body, from_=PHONE, sid=sid)
    return outage.receive_offline(
        services(app),
        to=params["To"],
        from_=params["From"],
        body=params["Body"],
        sid=params["MessageSid"],
        media=[],
        now=utcnow() - timedelta(minutes=3),
    )


def test_a_spooled_file_holds_no_text_no_number_and_only_its_owner_reads_it(
    spool_app: Flask,
) -> None:
    outcome = spool_text(spool_app)
    assert outcome.code is not None
    assert records.is_spool_code(outcome.code)
    (entry,) = services(spool_app).spool.entries()
    raw = entry.path.read_bytes()
    for secret in (TEXT, "his dad", PHONE, PHONE[2:], outcome.code):
        assert secret.encode() not in raw
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.path.parent.stat().st_mode) == 0o700
    assert not [p for p in entry.path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_a_key_rotation_between_outage_and_drain_still_opens_the_spool(tmp_path: Path) -> None:
    old = Spool(tmp_path, MasterKeyring(parse_master_keys(TEST_KEY_1)))
    entry = old.put({"body": TEXT}, "SM1")
    rotated = Spool(tmp_path, MasterKeyring(parse_master_keys(f"{TEST_KEY_2},{TEST_KEY_1}")))
    assert rotated.read(entry)["body"] == TEXT


def test_a_planted_or_swapped_spool_file_is_not_stored_and_stays_counted(
    spool_app: Flask,
) -> None:
    """Someone who can write the folder but has no master key cannot slip a tip in, and one
    record copied over another's name does not open (each is bound to its own id)."""
    svc = services(spool_app)
    spool_text(spool_app)
    spool_text(spool_app, "there is a fight at the bus loop")
    first, second = svc.spool.entries()
    shutil.copyfile(first.path, second.path)  # swapped: second's name, first's record
    (svc.spool.directory / ("f" * 32 + ".tip")).write_bytes(b"tipline-spool-1\ntest1\nforged")
    drained = drain_now(spool_app, svc)
    assert (drained.stored, drained.left) == (1, 2)
    assert svc.spool.size() == 2
    with spool_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Tip)) == 1


def test_a_drain_stores_each_text_once_even_after_a_crash_before_the_unlink(
    spool_app: Flask,
) -> None:
    svc = services(spool_app)
    outcome = spool_text(spool_app)
    (entry,) = svc.spool.entries()
    kept = entry.path.read_bytes()
    assert drain_now(spool_app, svc).stored == 1
    entry.path.write_bytes(kept)  # as if the drainer died between its commit and the unlink
    assert drain_now(spool_app, svc).stored == 1  # found stored (a replay), only removed
    assert svc.spool.size() == 0
    with spool_app.app_context():
        tips = db.session.scalars(select(Tip)).all()
        assert [t.code for t in tips] == [outcome.code]  # the code the student was given
        assert tips[0].created_at < utcnow() - timedelta(minutes=2)  # when it was texted
        assert db.session.scalar(select(func.count()).select_from(InboundSid)) == 1


def test_another_process_holding_the_drain_lock_leaves_the_spool_alone(
    spool_app: Flask,
) -> None:
    svc = services(spool_app)
    spool_text(spool_app)
    fd = os.open(svc.spool.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        drained = drain_now(spool_app, svc)
        assert not drained.held
        assert drained.stored == 0
        assert svc.spool.size() == 1
    finally:
        os.close(fd)
    assert drain_now(spool_app, svc).stored == 1


def test_the_web_process_drains_its_spool_after_a_text_is_stored_normally(
    spool_app: Flask,
) -> None:
    svc = services(spool_app)
    spooled = spool_text(spool_app)
    resp = post_signed(spool_app.test_client(), "/sms/inbound", sms_params("hello?"))
    assert "T" in twiml_text(resp)
    wait_for(lambda: svc.spool.size() == 0, 20, "the web process to drain the spool")

    def stored() -> bool:
        with spool_app.app_context():
            return db.session.scalar(select(Tip.id).where(Tip.code == spooled.code)) is not None

    wait_for(stored, 20, "the spooled tip to be stored")
    health = spool_app.test_client().get("/healthz").get_json()
    assert health["spool"] == 0


def test_metrics_show_the_spool_size(spool_app: Flask) -> None:
    spool_text(spool_app)
    body = spool_app.test_client().get("/metrics").get_data(as_text=True)
    assert "tipline_spool_size 1.0" in body


def test_database_codes_never_take_the_spool_codes_length() -> None:
    drawn = {len(code) for _ in range(200) for code in records.candidate_codes()}
    assert records.SPOOL_DIGITS + 1 not in drawn
    assert all(records.is_spool_code(records.spool_code()) for _ in range(100))


def test_a_web_tip_with_the_database_down_shows_its_receipt_and_opens_once_stored(
    spool_app: Flask, env: dict[str, str], tmp_path: Path
) -> None:
    """The form and its receipt work from the configuration file and the spool; once the
    database is back the receipt opens the stored tip, as any other."""
    down = build_app(
        {
            **env,
            "TIPLINE_DATABASE_URL": "postgresql://tipline@127.0.0.1:9/tipline",
            "TIPLINE_SPOOL_DIR": str(tmp_path / "spool"),
        },
        TESTING=True,
    )
    try:
        code, passphrase = submit_tip(down.test_client(), TEXT)
    finally:
        with down.app_context():
            db.engine.dispose()
    assert code
    assert passphrase
    svc = services(spool_app)
    assert svc.spool.size() == 1
    assert TEXT.encode() not in next(iter(svc.spool.entries())).path.read_bytes()
    assert drain_now(spool_app, svc).stored == 1
    assert svc.spool.size() == 0
    with spool_app.app_context():
        tip = web.open_followup(db.session(), svc.vault, code, passphrase)
        assert tip is not None
        assert svc.vault.get_text(tip, "body") == TEXT
        assert tip.source == "web"
        assert not tip.needs_routing  # routed by the drain


def test_a_worker_on_the_same_machine_drains_the_spool_without_any_new_text(
    spool_app: Flask,
) -> None:
    from workers.runner import Sweeper  # noqa: PLC0415

    svc = services(spool_app)
    spooled = spool_text(spool_app)
    sweeper = Sweeper(spool_app, interval=0.2)
    sweeper.start()
    try:
        wait_for(lambda: svc.spool.size() == 0, 20, "the worker's sweeper to drain the spool")
    finally:
        sweeper.stopping.set()
        sweeper.join(timeout=10)
    with spool_app.app_context():
        assert db.session.scalar(select(Tip.code)) == spooled.code
