"""Storm control against real texts: distinct events page apart, a prank list cannot silence a
real threat, an acknowledged incident pages again, and a replacing alert keeps its step."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select

from tests.conftest import count, post_signed, sms_params, twiml_text
from tests.support.alerting import (
    LINCOLN,
    RUIZ,
    WEDNESDAY_10AM,
    outbound,
    route,
    run_due,
    sender_for,
    the_alert,
)
from tests.support.fakes import FakeTwilio
from tipline.extensions import db
from tipline.models import Alert, AlertStep, Flood, Incident, Tip

T0 = WEDNESDAY_10AM
NAMES = [
    "Jaylen", "Marcus", "Devon", "Aiden", "Sophia", "Liam", "Noah", "Emma", "Olivia", "Ava",
    "Mia", "Ethan", "Mason", "Logan", "Lucas", "Elijah", "Isaiah", "Jayden", "Carter", "Dylan",
    "Tyler", "Brandon", "Xavier", "Malik", "Andre", "Diego", "Mateo", "Kayla", "Jasmine",
    "Brianna",
]  # fmt: skip
PLACES = [
    "the bus loop", "the east stairwell", "B hall", "portable 4", "the band room",
    "the west stairwell", "C hall", "portable 7", "the gym", "the library", "the cafeteria",
    "room 112", "room 204", "the parking lot", "the football field", "the auditorium",
    "the choir room", "the art room", "the front office", "the main entrance", "the senior lot",
    "the courtyard", "the bleachers", "the north stairwell", "D hall", "portable 2",
    "the locker room", "the science wing", "the bus stop", "the quad",
]  # fmt: skip
REAL = "Marcus has a gun in the cafeteria right now and he says hes going to shoot people"


def phone(n: int) -> str:
    return f"+1555300{n:04d}"


def text(app: Flask, body: str, from_: str) -> str:
    """A signed inbound SMS to Lincoln's number, as Twilio posts it; the TwiML reply's text."""
    resp = post_signed(app.test_client(), "/sms/inbound", sms_params(body, from_=from_, to=LINCOLN))
    assert resp.status_code == 200
    return twiml_text(resp)


def route_new(app: Flask, at: datetime) -> list[tuple[str, str | None]]:
    """Route the tips waiting for it, as the routing job would at `at`: (code, alert opened)."""
    with app.app_context():
        ids = list(db.session.scalars(select(Tip.id).where(Tip.needs_routing)))
    out = []
    for tip_id in ids:
        routed = route(app, tip_id, at)
        assert routed is not None
        out.append((routed.code, routed.alert_id))
    return out


def sro_pages(app: Flask) -> list[str]:
    return [
        m.summary for m in outbound(app, purpose="alert", channel="sms") if m.to_label == "ruiz"
    ]


def test_30_critical_texts_about_30_events_page_30_times(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    sender = sender_for(twilio_app)
    codes = []
    for n, (name, place) in enumerate(zip(NAMES, PLACES, strict=True)):
        who = name.lower() if n % 3 == 1 else name  # first names in any case
        body = (
            f"{who} just showed me a gun in his waistband by {place}, "
            "he says hes going to shoot someone right now"
        )
        text(twilio_app, body, phone(n))
        at = T0 + timedelta(seconds=n)
        [(code, alert_id)] = route_new(twilio_app, at)
        assert alert_id is not None, f"{body!r} paged nobody"
        codes.append(code)
        sender.send_owed(at)
    assert count(twilio_app, Incident) == 30
    assert count(twilio_app, Alert) == 30
    assert count(twilio_app, Flood) == 0  # one a second stays below the flood level
    pages = sro_pages(twilio_app)
    assert len(pages) == 30
    assert all(any(code in page for page in pages) for code in codes)
    sent = [m.form["Body"] for m in fake_twilio.messages() if m.form["To"] == RUIZ]
    assert len(sent) == 30
    assert all(any(code in body for body in sent) for code in codes)


def test_a_prank_list_acknowledged_cannot_silence_a_real_threat(twilio_app: Flask) -> None:
    names = ", ".join(
        [*NAMES, *(n + "a" for n in NAMES[:20])]  # fifty first names
    )
    prank = (
        f"{names} all have guns, knives, a bomb, bats, machetes, rifles, pistols, grenades and "
        f"tasers in {', '.join(PLACES[:13])} and they are going to shoot everyone right now"
    )
    text(twilio_app, prank, phone(1))
    [(prank_code, prank_alert)] = route_new(twilio_app, T0)
    assert prank_alert is not None
    reply = text(twilio_app, f"ACK {prank_code[1:]}", RUIZ)
    assert reply.startswith(f"Acknowledged: {prank_code}")
    text(twilio_app, prank, phone(1))  # posted once more (it threads into the prank tip)
    route_new(twilio_app, T0 + timedelta(seconds=30))
    text(twilio_app, REAL, phone(2))
    [(real_code, real_alert)] = route_new(twilio_app, T0 + timedelta(seconds=60))
    assert real_alert is not None
    assert any(real_code in page for page in sro_pages(twilio_app))
    with twilio_app.app_context():
        incidents = db.session.scalars(select(Incident).order_by(Incident.opened_at)).all()
        *pranks, real = incidents
        assert pranks
        assert all(i.keys == [] for i in pranks)  # a list lends no keys
        assert real.keys


def test_a_critical_tip_after_an_ack_pages_again_naming_both_codes(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    text(twilio_app, REAL, phone(1))
    [(first, _)] = route_new(twilio_app, T0)
    text(twilio_app, f"ACK {first[1:]}", RUIZ)
    acked = the_alert(twilio_app)
    assert acked.status == "acked"
    assert acked.acked_at is not None
    text(
        twilio_app, "marcus pulled his gun out in the cafeteria, hes pointing it at kids", phone(2)
    )
    [(second, alert_id)] = route_new(twilio_app, T0 + timedelta(minutes=2))
    assert alert_id is not None
    assert count(twilio_app, Incident) == 1  # one event: a person, a weapon and a place
    at = acked.acked_at.astimezone(ZoneInfo("America/Chicago")).strftime("%H:%M")
    page = sro_pages(twilio_app)[-1]  # "T5067 · new report on incident T4821, acked 10:02"
    assert f"{second} · new report on incident {first}, acked {at}" in page
    assert page.endswith(f" · Reply ACK {second[1:]}")
    sender_for(twilio_app).send_owed(T0 + timedelta(minutes=2))
    [sms] = [m.form["Body"] for m in fake_twilio.messages() if second in m.form["Body"]]
    assert f"new report on incident {first}, acked {at}" in sms
    assert f"Reply ACK {second[1:]}" in sms


def test_a_tip_that_first_says_now_or_hurt_pages_again(app: Flask) -> None:
    first = "Devon is bringing a knife to the band room tomorrow and says hes going to use it"
    later = "Devon just pulled a knife on a kid in the band room, hes bleeding, come now"
    text(app, first, phone(1))
    route_new(app, T0)
    text(app, later, phone(2))
    [(_code, alert_id)] = route_new(app, T0 + timedelta(seconds=30))
    assert alert_id is not None
    assert count(app, Incident) == 1
    reason = the_alert(app).reason
    assert "happening now" in reason
    assert "someone is hurt" in reason


def test_an_alert_replaced_by_an_addition_keeps_its_step(app: Flask) -> None:
    text(app, REAL, phone(1))
    route_new(app, T0)
    assert run_due(app, T0 + timedelta(minutes=2)) == 1  # step 1: admin and SRO
    old = the_alert(app)
    assert (old.round, old.step) == (0, 2)
    text(app, "Marcus has a gun in the cafeteria and Tyler is with him", phone(2))
    [(_code, alert_id)] = route_new(app, T0 + timedelta(minutes=3))
    assert alert_id is not None
    new = the_alert(app)
    assert new.id == alert_id
    assert "names a person" in new.reason
    assert (new.round, new.step, new.next_at) == (0, 2, old.next_at)
    with app.app_context():
        assert db.session.get(Alert, old.id).status == "superseded"  # type: ignore[union-attr]
        old_step1 = db.session.scalars(
            select(AlertStep).where(AlertStep.alert_id == old.id, AlertStep.step == 1)
        ).one()
        update = db.session.scalars(select(AlertStep).where(AlertStep.alert_id == new.id)).one()
        assert (update.round, update.step, update.executed_by) == (0, 1, "update")
        assert update.recipients == old_step1.recipients  # those paged so far hear of it now
    assert run_due(app, T0 + timedelta(minutes=4)) == 0  # the deadline did not move ...
    assert old.next_at is not None
    assert run_due(app, old.next_at) == 1  # ... and step 2 runs on it
    assert (the_alert(app).round, the_alert(app).step) == (1, 0)
