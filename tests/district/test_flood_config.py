"""The configuration file's `flood = {...}` per school: defaults, errors, and its sync."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.district.test_retention_config import doc
from tipline.district.config import FloodConfig, parse_district
from tipline.district.sync import district_from_db, sync_district
from tipline.errors import ConfigError
from tipline.extensions import db, dbsession
from tipline.models import School


def test_flood_defaults_are_6_new_web_sessions_or_20_tips_in_10_s() -> None:
    (school,) = parse_district(doc()).schools
    assert school.flood == FloodConfig(
        web_sessions=6,
        tips=20,
        window=timedelta(seconds=10),
        quiet=timedelta(minutes=2),
        digest=timedelta(seconds=60),
    )


def test_flood_keys_are_each_optional() -> None:
    (school,) = parse_district(doc(flood={"tips": 40, "quiet": "5m"})).schools
    assert school.flood == FloodConfig(tips=40, quiet=timedelta(minutes=5))


@pytest.mark.parametrize(
    ("flood", "message"),
    [
        ({"tip": 30}, "unknown key 'tip'"),
        ({"tips": "30"}, "tips must be a whole number of tips"),
        ({"web_sessions": True}, "web_sessions must be a whole number of tips"),
        ({"web_sessions": 1}, "web_sessions must be between 2 and 1000"),
        ({"tips": 0}, "tips must be between 2 and 10000"),
        ({"window": 10}, 'window: must be a duration like "45s"'),
        ({"window": "1h"}, "window must be between 1s and 600s"),
        ({"digest": "5s"}, "digest must be between 30s and 600s"),
        ({"quiet": "2d"}, "quiet must be between 30s and 3600s"),
        ("on", "field 'flood'"),
    ],
)
def test_a_bad_flood_setting_names_the_school_and_the_key(flood: object, message: str) -> None:
    with pytest.raises(ConfigError, match="slug 'lincoln'") as excinfo:
        parse_district(doc(flood=flood))
    assert message in str(excinfo.value)


def test_flood_is_synced_to_the_school_and_read_back(app: Flask) -> None:
    district = parse_district(doc(flood={"web_sessions": 10, "window": "20s"}))
    with app.app_context():
        report = sync_district(dbsession(), district)
        db.session.commit()
        assert "updated school lincoln" in report.lines()
        row = dbsession().scalars(select(School).where(School.slug == "lincoln")).one()
        assert FloodConfig.from_row(row.flood) == FloodConfig(
            web_sessions=10, window=timedelta(seconds=20)
        )
        (school,) = [s for s in district_from_db(dbsession()).schools if s.slug == "lincoln"]
        assert school.flood == FloodConfig(web_sessions=10, window=timedelta(seconds=20))
