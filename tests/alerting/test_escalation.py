"""Escalation on an injected clock: who is paged, when the next step fires, when nothing does."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from tests.support.alerting import (
    CHEN,
    GUN,
    LINCOLN,
    RUIZ,
    STUDENT,
    WEDNESDAY_10AM,
    add_tip,
    chicago,
    outbound,
    route,
    run_due,
    sender_for,
    steps,
    the_alert,
    tip_code,
    use_config,
)
from tests.support.fakes import FakeTwilio
from tests.support.policies import policy, step
from tipline.alerting import escalation
from tipline.extensions import dbsession
from tipline.outbox import gsm
from tipline.platform.services import services

T0 = WEDNESDAY_10AM


def test_critical_sms_tip_pages_the_on_duty_sro_by_sms_and_call(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    tip_id = add_tip(twilio_app, GUN, T0)
    routed = route(twilio_app, tip_id, T0)
    assert routed is not None
    assert routed.alert_id
    assert steps(twilio_app) == [(0, 0, ["ruiz"])]
    sender = sender_for(twilio_app)
    assert sorted(sender.send_owed(T0)) == ["sent", "sent"]
    sender.notifier.close()

    [sms] = fake_twilio.messages()
    [call] = fake_twilio.calls()
    code = tip_code(twilio_app, tip_id)
    assert sms.form["To"] == RUIZ
    assert sms.form["From"] == LINCOLN
    assert sms.form["ValidityPeriod"] == "600"
    assert sms.form["StatusCallback"] == "http://tipline.test/sms/status"
    body = sms.form["Body"]
    assert body.startswith(f"CRITICAL weapon {code} Lincoln High School")
    assert f"Reply ACK {code[1:]}" in body
    assert "http://tipline.test/ack/" in body
    assert "gun in his backpack" in body  # lincoln's alert_text is "excerpt"
    assert gsm.is_gsm7(body)
    assert gsm.septets(body) <= gsm.TWO_SEGMENTS
    assert STUDENT not in body
    assert STUDENT[2:] not in body
    assert call.form["To"] == RUIZ
    assert call.form["From"] == LINCOLN
    assert call.form["Url"].startswith("http://tipline.test/voice/alert/")


def test_without_an_ack_the_next_step_fires_at_its_wait(twilio_app: Flask) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    assert run_due(twilio_app, T0 + timedelta(seconds=119)) == 0
    assert run_due(twilio_app, T0 + timedelta(seconds=120)) == 1
    # life-safety step 2: role:admin (patel, brooks at lincoln) and the on-duty SRO again
    assert steps(twilio_app)[-1] == (0, 1, ["patel", "brooks", "ruiz"])
    assert run_due(twilio_app, T0 + timedelta(seconds=120 + 179)) == 0
    assert run_due(twilio_app, T0 + timedelta(seconds=300)) == 1
    assert steps(twilio_app)[-1][:2] == (0, 2)


def test_a_step_runs_once_however_often_its_timer_fires(twilio_app: Flask) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    alert = the_alert(twilio_app)
    later = T0 + timedelta(seconds=121)
    with twilio_app.app_context():
        svc = services(twilio_app)
        first = escalation.run_step(
            dbsession(), svc.vault, alert.id, alert.token, later, public_url="http://x"
        )
        again = escalation.run_step(
            dbsession(), svc.vault, alert.id, alert.token, later, public_url="http://x"
        )
    assert first.executed
    assert not again.executed
    assert [s[:2] for s in steps(twilio_app)] == [(0, 0), (0, 1)]


def test_an_early_timer_sends_nothing_and_says_when(twilio_app: Flask) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    alert = the_alert(twilio_app)
    with twilio_app.app_context():
        svc = services(twilio_app)
        run = escalation.run_step(
            dbsession(),
            svc.vault,
            alert.id,
            alert.token,
            T0 + timedelta(seconds=30),
            public_url="http://x",
        )
    assert run.early
    assert not run.executed
    assert run.next_at == T0 + timedelta(seconds=120)


def test_repeat_zero_sends_nothing_after_the_last_step(twilio_app: Flask, tmp_path: Path) -> None:
    use_config(
        twilio_app,
        tmp_path,
        policy("short", step("on-duty:sro", wait="3s"), step("role:admin", wait="3s"), repeat=0),
    )
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    assert run_due(twilio_app, T0 + timedelta(seconds=3)) == 1
    assert the_alert(twilio_app).next_at is None
    for minutes in (1, 10, 60, 600):
        assert run_due(twilio_app, T0 + timedelta(minutes=minutes)) == 0
    assert [s[:2] for s in steps(twilio_app)] == [(0, 0), (0, 1)]
    assert the_alert(twilio_app).status == "open"  # nothing more is sent, but it can be acked


def test_repeat_runs_the_whole_chain_again(twilio_app: Flask, tmp_path: Path) -> None:
    use_config(
        twilio_app,
        tmp_path,
        policy("twice", step("on-duty:sro", wait="3s"), step("role:admin", wait="5s"), repeat=1),
    )
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    for seconds in (3, 8, 11, 16, 60):
        run_due(twilio_app, T0 + timedelta(seconds=seconds))
    assert [s[:2] for s in steps(twilio_app)] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_policy_snapshot_is_kept_when_the_config_changes(twilio_app: Flask, tmp_path: Path) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    use_config(
        twilio_app,
        tmp_path,
        policy("other", step("role:district", channels=("email",), wait="1h")),
    )
    run_due(twilio_app, T0 + timedelta(seconds=120))
    assert the_alert(twilio_app).policy["name"] == "life-safety"
    assert steps(twilio_app)[-1] == (0, 1, ["patel", "brooks", "ruiz"])


def test_self_harm_reaches_the_counselor_on_duty_as_well_as_the_sro(twilio_app: Flask) -> None:
    route(
        twilio_app, add_tip(twilio_app, "I am going to kill myself tonight, I have pills", T0), T0
    )
    assert the_alert(twilio_app).policy["name"] == "life-safety-self-harm"
    assert steps(twilio_app) == [(0, 0, ["ruiz", "garcia"])]


def test_a_tip_no_policy_matches_pages_the_fallback_with_a_warning(
    twilio_app: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    use_config(
        twilio_app,
        tmp_path,
        policy(
            "only-low", step("on-duty:admin", channels=("email",), wait="4h"), severity=("low",)
        ),
    )
    with caplog.at_level("WARNING", logger="tipline.alerting.escalation"):
        route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    assert "no policy matches" in caplog.text
    assert the_alert(twilio_app).policy["name"] == "(fallback)"
    assert steps(twilio_app) == [(0, 0, ["patel", "brooks"])]  # lincoln: role:admin


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (chicago(2026, 3, 4, 6, 59), "chen"),  # Wednesday before the day shift
        (chicago(2026, 3, 4, 7, 0), "ruiz"),
        (chicago(2026, 3, 4, 16, 0), "chen"),  # the night shift starts
        (chicago(2026, 3, 6, 23, 30), "chen"),  # Friday night into Saturday
        (chicago(2026, 3, 8, 1, 30), "chen"),  # Sunday, just before spring-forward
        (chicago(2026, 3, 8, 3, 30), "chen"),  # just after it (02:00-03:00 never happened)
        (chicago(2026, 3, 9, 6, 30), "chen"),  # Monday small hours: Sunday's night shift
        (chicago(2026, 3, 9, 7, 0), "ruiz"),  # Monday 07:00 CDT, first day after the change
        (chicago(2026, 11, 1, 1, 30), "chen"),  # the repeated fall-back hour
        (chicago(2026, 11, 2, 6, 59), "chen"),
        (chicago(2026, 11, 2, 7, 0), "ruiz"),  # Monday 07:00 CST
    ],
)
def test_overnight_shifts_and_chicago_dst_page_the_right_person(
    twilio_app: Flask, at: datetime, expected: str
) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, at), at)
    assert steps(twilio_app) == [(0, 0, [expected])]
    phones = {m.to_label for m in outbound(twilio_app, channel="sms")}
    assert phones == {expected}


def test_first_sms_goes_out_before_any_call(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, chicago(2026, 3, 4, 20)), chicago(2026, 3, 4, 20))
    sender = sender_for(twilio_app)
    sender.send_owed(chicago(2026, 3, 4, 20))
    sender.notifier.close()
    assert [r.path.rsplit("/", 1)[1] for r in fake_twilio.requests] == [
        "Messages.json",
        "Calls.json",
    ]
    assert fake_twilio.messages()[0].form["To"] == CHEN
