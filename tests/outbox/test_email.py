"""Email alerts: a mail that quotes a tip goes only over TLS; a link-only mail may go plain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import reset_state
from tests.support.alerting import GUN, WEDNESDAY_10AM, add_tip, route, sender_for, use_config
from tests.support.policies import policy, step
from tests.support.smtp import fake_smtp
from tipline.cli.assemble import build_app
from tipline.extensions import db
from tipline.models import School
from tipline.outbox.notifier import Final, Notifier
from tipline.platform.services import services

T0 = WEDNESDAY_10AM
EMAIL_ONLY = policy("mail", step("on-duty:sro", channels=("email",)))


@contextmanager
def app_with_smtp(env: dict[str, str], url: str) -> Iterator[Flask]:
    app = build_app({**env, "TIPLINE_SMTP_URL": url}, TESTING=True)
    try:
        reset_state(app)
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def alert_by_email(app: Flask, tmp_path: Path, alert_text: str) -> list[str]:
    use_config(app, tmp_path, EMAIL_ONLY)
    with app.app_context():
        for school in db.session.scalars(select(School)):
            school.alert_text = alert_text
        db.session.commit()
    route(app, add_tip(app, GUN, T0), T0)
    sender = sender_for(app)
    try:
        return sender.send_owed(T0)
    finally:
        sender.notifier.close()


def test_email_quoting_a_tip_is_never_sent_without_tls(
    twilio_env: dict[str, str], tmp_path: Path
) -> None:
    with fake_smtp() as smtp, app_with_smtp(twilio_env, smtp.url) as app:
        outcomes = alert_by_email(app, tmp_path, "excerpt")
    assert outcomes != ["sent"]
    assert "EHLO" in smtp.verbs  # it got as far as asking for STARTTLS
    assert smtp.mails == []
    assert "DATA" not in smtp.verbs
    assert "MAIL" not in smtp.verbs


def test_link_only_email_may_go_over_plain_smtp(twilio_env: dict[str, str], tmp_path: Path) -> None:
    with fake_smtp() as smtp, app_with_smtp(twilio_env, smtp.url) as app:
        assert alert_by_email(app, tmp_path, "link") == ["sent"]
    [(to, text)] = smtp.mails
    assert to == "dana.ruiz@example.org"
    assert "Subject: CRITICAL weapon T" in text
    assert "http://tipline.test/ack/" in text
    assert "backpack" not in text


@pytest.mark.parametrize(
    ("scheme", "quotes_tip"),
    [("smtp", True), ("smtp+starttls", False), ("smtp+starttls", True)],
)
def test_notifier_refuses_plain_smtp_when_tls_is_required(
    twilio_app: Flask, scheme: str, quotes_tip: bool
) -> None:
    with fake_smtp() as smtp:
        url = smtp.url.replace("smtp://", f"{scheme}://")
        notifier = Notifier(replace(services(twilio_app).settings, smtp_url=url))
        with pytest.raises(Final, match="STARTTLS"):
            notifier.email(to="a@example.org", subject="s", body="b", quotes_tip=quotes_tip)
        notifier.close()
    assert smtp.mails == []
