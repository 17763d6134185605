"""Storm control: one event, one incident, paged once with a count; new facts page again."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import count
from tests.support.alerting import (
    WEDNESDAY_10AM,
    add_tip,
    outbound,
    route,
    steps,
)
from tipline.alerting import incidents
from tipline.extensions import db
from tipline.models import Alert, Incident, IncidentTip
from tipline.platform.services import services

T0 = WEDNESDAY_10AM
FIGHT = [
    "fight in the cafeteria right now",
    "FIGHT IN THE CAFETERIA",
    "omg there is a huge fight in the cafeteria",
    "big fight in cafeteria come quick",
    "fight in the lunchroom rn",
    "someone is getting beat up in the cafeteria",
    "two kids fighting in the cafeteria",
    "the fight in the cafeteria is still going",
]


def alerts_by_reason(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(Alert).order_by(Alert.created_at))
        return [(a.tip.school.slug, a.reason) for a in rows]


def test_200_tips_about_one_fight_page_at_most_3_times_and_other_events_page_at_once(
    app: Flask,
) -> None:
    texts = itertools.cycle(FIGHT)
    weapon_tip = None
    for n in range(200):
        at = T0 + timedelta(seconds=1.5 * n)
        text = next(texts)
        if n == 60:
            text = "fight in the cafeteria and now a kid has a knife"
        tip_id = add_tip(app, text, at)
        route(app, tip_id, at)
        if n == 100:  # meanwhile, elsewhere: two unrelated weapon tips
            weapon_tip = add_tip(app, "there is a gun in locker 12", at, school="washington")
            route(app, weapon_tip, at)
            assert steps(app)[-1] == (0, 0, ["chen"])  # paged at once
            other = add_tip(app, "someone has a gun in the parking lot", at)
            route(app, other, at)
            assert alerts_by_reason(app)[-1] == ("lincoln", "new tip")
    pages = [r for r in alerts_by_reason(app) if r[0] == "lincoln"]
    fight_pages = [r for r in pages if r[1] != "new tip" or r == pages[0]]
    assert len(fight_pages) <= 3, pages
    assert ("lincoln", "now critical, adds a weapon") in pages or (
        "lincoln",
        "adds a weapon",
    ) in pages
    assert count(app, Incident) == 3  # the fight, the locker, the parking lot
    with app.app_context():
        fight = db.session.scalars(select(Incident).order_by(Incident.tip_count.desc())).first()
        assert fight is not None
        assert fight.tip_count == 200
        assert not any("cafeteria" in k or "knife" in k or "blade" in k for k in fight.keys)
    sro_pages = [m for m in outbound(app, purpose="alert", channel="sms") if m.to_label == "ruiz"]
    assert len(sro_pages) <= 4  # the fight's pages (<= 3) and the parking lot gun


def test_same_place_after_the_window_is_a_new_incident(app: Flask) -> None:
    route(app, add_tip(app, "fight in the cafeteria right now", T0), T0)
    later = T0 + timedelta(minutes=5)
    route(app, add_tip(app, "fight in the cafeteria right now", later), later)
    assert count(app, Alert) == 1
    much_later = later + timedelta(minutes=11)
    route(app, add_tip(app, "fight in the cafeteria right now", much_later), much_later)
    assert count(app, Alert) == 2
    assert count(app, Incident) == 2


def test_tips_without_a_shared_place_person_or_weapon_do_not_merge(app: Flask) -> None:
    route(app, add_tip(app, "fight in the cafeteria right now", T0), T0)
    route(app, add_tip(app, "fight in the gym right now", T0), T0)
    route(app, add_tip(app, "there is a fight right now", T0), T0)  # no key at all
    assert count(app, Incident) == 3
    assert count(app, Alert) == 3


def test_a_critical_tip_pages_a_non_critical_incident_again(app: Flask) -> None:
    route(app, add_tip(app, "two kids are fighting in the cafeteria", T0), T0)
    at = T0 + timedelta(seconds=30)
    route(app, add_tip(app, "kid stabbed someone in the cafeteria, hes bleeding bad", at), at)
    assert [r[1] for r in alerts_by_reason(app)][-1].startswith("now critical")
    with app.app_context():
        first, second = db.session.scalars(select(Alert).order_by(Alert.created_at)).all()
        assert first.status == "superseded"
        assert second.status == "open"
        assert second.severity == "critical"


def test_a_named_person_pages_again(app: Flask) -> None:
    route(app, add_tip(app, "fight in the cafeteria right now", T0), T0)
    at = T0 + timedelta(seconds=30)
    route(app, add_tip(app, "fight in the cafeteria, a kid named tyler is bleeding", at), at)
    assert "names a person" in alerts_by_reason(app)[-1][1]
    with app.app_context():
        assert db.session.scalars(select(IncidentTip).where(IncidentTip.paged)).all()


def test_event_keys_come_from_places_people_and_weapons(app: Flask) -> None:
    with app.app_context():
        rules = services(app).rules(db.session)
    keys = incidents.event_keys("Mr. Smith saw Jake Miller with a gun near the lunchroom", rules)
    assert keys == {"place:cafeteria", "weapon:firearm", "person:smith", "person:jake"}
    assert incidents.event_keys("FIGHT IN THE CAFETERIA", rules) == {
        "place:cafeteria",
        "harm:fight",
    }
    assert incidents.event_keys("Big fight. Please come", rules) == {"harm:fight"}


def test_a_schools_own_places_count_as_places(app: Flask) -> None:
    for text in ("fight in the pit right now", "big fight at the pit", "fight in the annex"):
        route(app, add_tip(app, text, T0), T0)
    assert count(app, Incident) == 2  # the pit's fight (2 tips), the annex's
    with app.app_context():
        assert sorted(i.tip_count for i in db.session.scalars(select(Incident))) == [1, 2]


def test_an_event_behind_a_hundred_newer_ones_is_paged_again_not_lost(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tip is compared with the most recent incidents only (a burst of distinct events made
    each routing slower than the last); one about an older event opens its own and pages."""
    monkeypatch.setattr(incidents, "CANDIDATES", 3)
    route(app, add_tip(app, "fight in the cafeteria right now", T0), T0)
    for n, place in enumerate(("gym", "library", "band room")):
        at = T0 + timedelta(seconds=n + 1)
        route(app, add_tip(app, f"fight in the {place} right now", at), at)
    at = T0 + timedelta(seconds=10)
    route(app, add_tip(app, "fight in the gym still going", at), at)  # within the 3: joins
    assert count(app, Incident) == 4
    route(app, add_tip(app, "the fight in the cafeteria is still going", at), at)
    assert count(app, Incident) == 5  # behind 3 newer ones: its own incident
    assert count(app, Alert) == 5  # and it paged
