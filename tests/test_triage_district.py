"""A district's own triage words, from its config file, reach both the CLI and live intake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import EXAMPLE_CONFIG, sms_params
from tipline.district import load_district
from tipline.extensions import db, dbsession
from tipline.models import Tip
from tipline.services import services
from tipline.sync import sync_district
from tipline.triage import classify, load_rules

TEXT = "he brought his boomstick to school today"


def district_config(tmp_path: Path) -> Path:
    path = tmp_path / "district.toml"
    path.write_text(EXAMPLE_CONFIG.read_text() + '\n[triage]\naliases = { boomstick = "gun" }\n')
    return path


def triage_cli(env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "tipline", "triage", TEXT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd="/",
    )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_triage_command_uses_the_district_words(tmp_path: Path, env: dict[str, str]) -> None:
    assert triage_cli(env)["category"] != "weapon"
    verdict = triage_cli({**env, "TIPLINE_CONFIG": str(district_config(tmp_path))})
    assert verdict["severity"] == "critical"
    assert verdict["category"] == "weapon"


def test_intake_uses_the_district_words_after_init(app: Flask, tmp_path: Path) -> None:
    with app.app_context():
        sync_district(dbsession(), load_district(district_config(tmp_path)))
        db.session.commit()
        services(app).forget_rules()
    assert app.test_client().post("/sms/inbound", data=sms_params(TEXT)).status_code == 200
    with app.app_context():
        tip = db.session.scalars(select(Tip)).one()
        assert (tip.severity, tip.category) == ("critical", "weapon")


def test_rule_files_of_a_config_given_by_a_relative_path_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "slang.toml").write_text('aliases = { boomstick = "gun" }\n')
    (conf / "district.toml").write_text(
        EXAMPLE_CONFIG.read_text() + '\n[triage]\nfiles = ["slang.toml"]\n'
    )
    monkeypatch.chdir(tmp_path)
    district = load_district(Path("conf/district.toml"))  # files resolve beside the config
    rules = load_rules(district.triage)
    assert classify(TEXT, rules=rules).category == "weapon"
