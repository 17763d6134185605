"""The configuration file's `retention = {...}` per school, and its sync into the database."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tipline.district.config import RetentionConfig, parse_district
from tipline.district.sync import district_from_db, sync_district
from tipline.errors import ConfigError
from tipline.extensions import db, dbsession
from tipline.models import School


def doc(**school: Any) -> dict[str, Any]:
    return {
        "school": [
            {
                "slug": "lincoln",
                "name": "Lincoln High School",
                "timezone": "America/Chicago",
                "sms_number": "+15550000100",
                **school,
            }
        ]
    }


def test_retention_defaults_to_a_year_thirty_days_and_ninety_days() -> None:
    (school,) = parse_district(doc()).schools
    assert school.retention == RetentionConfig(365, 30, 90)


def test_retention_keys_are_each_optional() -> None:
    (school,) = parse_district(doc(retention={"closed_days": 730, "phone_days": 7})).schools
    assert school.retention == RetentionConfig(closed_days=730, phone_days=7, attachment_days=90)


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"closed": 30}, "unknown key 'closed'"),
        ({"phone_days": "30d"}, "phone_days must be a whole number of days"),
        ({"phone_days": True}, "phone_days must be a whole number of days"),
        ({"attachment_days": 0}, "attachment_days must be between 1 and 36500 days"),
        ({"closed_days": 40000}, "closed_days must be between 1 and 36500 days"),
        (30, "field 'retention'"),
    ],
)
def test_a_bad_retention_setting_names_the_school_and_the_key(
    retention: object, message: str
) -> None:
    with pytest.raises(ConfigError, match="slug 'lincoln'") as excinfo:
        parse_district(doc(retention=retention))
    assert message in str(excinfo.value)


def test_retention_is_synced_to_the_school_and_read_back(app: Flask) -> None:
    district = parse_district(
        doc(retention={"closed_days": 200, "phone_days": 14, "attachment_days": 45})
    )
    with app.app_context():
        report = sync_district(dbsession(), district)
        db.session.commit()
        assert "updated school lincoln" in report.lines()
        row = dbsession().scalars(select(School).where(School.slug == "lincoln")).one()
        assert (
            row.retention_closed_days,
            row.retention_phone_days,
            row.retention_attachment_days,
        ) == (200, 14, 45)
        (school,) = [s for s in district_from_db(dbsession()).schools if s.slug == "lincoln"]
        assert school.retention == RetentionConfig(200, 14, 45)
