"""With the database unreachable, students are told what to do and nothing leaks into the log."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from flask import Flask

from tests.conftest import sign, sms_params
from tests.support.wait import wait_for
from tipline.cli.assemble import build_app

PHONE = "+15551237777"
TEXT = "he said he will bring his dad's gun tomorrow"
# Nothing listens on the discard port: every connection is refused at once.
NO_DATABASE = "postgresql://tipline@127.0.0.1:9/tipline"


@pytest.fixture
def app_without_db(env: dict[str, str], tmp_path: Path) -> Iterator[Flask]:
    app = build_app(
        {**env, "TIPLINE_DATABASE_URL": NO_DATABASE, "TIPLINE_SPOOL_DIR": str(tmp_path / "spool")},
        TESTING=True,
    )
    yield app
    from tipline.extensions import db  # noqa: PLC0415

    with app.app_context():
        db.engine.dispose()


def test_sms_with_the_database_down_is_answered_with_a_code_and_spooled(
    app_without_db: Flask, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    params = sms_params(TEXT, from_=PHONE)
    with caplog.at_level(logging.DEBUG):
        resp = app_without_db.test_client().post(
            "/sms/inbound",
            data=params,
            headers={"X-Twilio-Signature": sign("/sms/inbound", params)},
        )
    assert resp.status_code == 200  # the only status whose TwiML reaches the student
    reply = "".join(m.text or "" for m in ElementTree.fromstring(resp.data).iter("Message"))  # noqa: S314 - our own TwiML
    assert re.search(r"Your tip code is T\d{8}\.", reply), reply
    assert "call 911" in reply
    assert "database unavailable" in caplog.text
    spooled = list((tmp_path / "spool").glob("*.tip"))
    assert len(spooled) == 1
    raw = spooled[0].read_bytes()
    for secret in (PHONE, PHONE[2:], "dad's gun", "gun tomorrow"):
        assert secret not in caplog.text
        assert secret.encode() not in raw  # the spool file is encrypted
    health = app_without_db.test_client().get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["spool"] == 1
    assert health.get_json()["db"] == "down"
    metrics = app_without_db.test_client().get("/metrics")  # from loopback, no token set
    assert metrics.status_code == 200
    assert "tipline_spool_size 1.0" in metrics.get_data(as_text=True)


def test_sms_with_the_database_and_the_spool_down_asks_to_text_again(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A spool that cannot be written (here: its path is a file) falls back to the old answer."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    app = build_app(
        {**env, "TIPLINE_DATABASE_URL": NO_DATABASE, "TIPLINE_SPOOL_DIR": str(blocker / "spool")},
        TESTING=True,
    )
    params = sms_params(TEXT, from_=PHONE)
    resp = app.test_client().post(
        "/sms/inbound", data=params, headers={"X-Twilio-Signature": sign("/sms/inbound", params)}
    )
    reply = "".join(m.text or "" for m in ElementTree.fromstring(resp.data).iter("Message"))  # noqa: S314 - our own TwiML
    assert "text it again" in reply
    assert "llama al 911" in reply
    from tipline.extensions import db  # noqa: PLC0415

    with app.app_context():
        db.engine.dispose()


def test_status_callback_with_the_database_down_is_a_503(app_without_db: Flask) -> None:
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    resp = app_without_db.test_client().post(
        "/sms/status", data=params, headers={"X-Twilio-Signature": sign("/sms/status", params)}
    )
    assert resp.status_code == 503
    assert resp.get_data(as_text=True) == "database unavailable\n"


def test_web_form_of_an_unknown_school_with_the_database_down_is_a_503_page_with_911(
    app_without_db: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_without_db.test_client()
    resp = client.get("/tip/nowhere?lang=es")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "60"
    page = resp.get_data(as_text=True)
    assert "Inténtalo más tarde" in page
    assert "llama al 911" in page
    assert "Traceback" not in page
    assert "database unavailable" in caplog.text


def test_a_worker_started_with_the_database_down_says_so_and_keeps_trying(
    app_without_db: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL away at start: the route listener logs one plain line per attempt (no
    traceback) and its dispatcher keeps running, to pick up once the server is back."""
    from workers.runner import Dispatcher  # noqa: PLC0415

    dispatcher = Dispatcher(app_without_db)
    assert dispatcher.listener is not None  # the app is configured for PostgreSQL
    with caplog.at_level(logging.WARNING):
        dispatcher.start()
        wait_for(
            lambda: "route listener: database unavailable" in caplog.text,
            10,
            "the route listener to log that the database is unavailable",
        )
        assert not dispatcher.ready(0.2)
        assert dispatcher.is_alive()
        dispatcher.stopping.set()
        dispatcher.join(timeout=10)
    assert not dispatcher.is_alive()
    assert "Traceback" not in caplog.text
    assert "failed" not in caplog.text
