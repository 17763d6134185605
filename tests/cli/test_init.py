"""`tipline init`: migrations and config sync, safe to run again, updating in place."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import EXAMPLE_CONFIG
from tipline.cli import main
from tipline.extensions import db
from tipline.models import NamedSecret, Policy, School, Shift, Staff


def run_init(env: dict[str, str]) -> str:
    result = CliRunner().invoke(main, ["init"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_twice_changes_nothing(app: Flask, env: dict[str, str]) -> None:
    run_init(env)
    with app.app_context():
        before = [
            db.session.scalar(select(func.count()).select_from(m))
            for m in (School, Staff, Shift, Policy, NamedSecret)
        ]
        lookup = db.session.get(NamedSecret, "lookup")
        assert lookup is not None
        wrapped = lookup.wrapped
    run_init(env)
    with app.app_context():
        after = [
            db.session.scalar(select(func.count()).select_from(m))
            for m in (School, Staff, Shift, Policy, NamedSecret)
        ]
        again = db.session.get(NamedSecret, "lookup")
        assert again is not None
        assert again.wrapped == wrapped, "init must never replace the lookup key"
    assert before == after == [2, 7, 9, 6, 1]


def test_init_updates_schools_staff_and_shifts_in_place(
    app: Flask, env: dict[str, str], tmp_path: Path
) -> None:
    with app.app_context():
        ruiz_id = db.session.scalars(select(Staff.id).where(Staff.key == "ruiz")).one()
    changed = (
        EXAMPLE_CONFIG.read_text()
        .replace('name = "Lincoln High School"', 'name = "Lincoln Senior High"')
        .replace('phone = "+15550000111"', 'phone = "+15550000119"')
    )
    config = tmp_path / "district.toml"
    config.write_text(changed)
    output = run_init({**env, "TIPLINE_CONFIG": str(config)})
    assert "updated school lincoln" in output
    with app.app_context():
        lincoln = db.session.scalars(select(School).where(School.slug == "lincoln")).one()
        assert lincoln.name == "Lincoln Senior High"
        ruiz = db.session.scalars(select(Staff).where(Staff.key == "ruiz")).one()
        assert ruiz.id == ruiz_id, "staff keep their row (tips and audit events refer to it)"
        assert ruiz.phone == "+15550000119"


def test_staff_removed_from_the_config_are_deactivated_not_deleted(
    app: Flask, env: dict[str, str], tmp_path: Path
) -> None:
    text = EXAMPLE_CONFIG.read_text()
    start = text.index('[[staff]]\nid = "okafor"')
    end = text.index("# --- who is on duty")
    config = tmp_path / "district.toml"
    config.write_text((text[:start] + text[end:]).replace(', "staff:okafor"', ""))
    output = run_init({**env, "TIPLINE_CONFIG": str(config)})
    assert "deactivated staff okafor" in output
    with app.app_context():
        okafor = db.session.scalars(select(Staff).where(Staff.key == "okafor")).one()
        assert not okafor.active
        assert okafor.schools == []
