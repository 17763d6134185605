"""A district's own triage words, from its config file, reach both the CLI and live intake."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import EXAMPLE_CONFIG, sms_params
from tipline.district.config import load_district
from tipline.district.sync import sync_district
from tipline.extensions import db, dbsession
from tipline.models import TRIAGE_SETTING, Setting, Tip
from tipline.platform.services import RULES_TTL, services
from tipline.triage import classify, load_rules

TEXT = "he has the boomstick in room 12 today"  # the model alone reads it as critical, not weapon


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


def test_running_processes_pick_up_new_district_words(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, svc = app.test_client(), services(app)
    first, second = sms_params(TEXT, from_="+15551238001"), sms_params(TEXT, from_="+15551238002")
    assert client.post("/sms/inbound", data=first).status_code == 200
    with app.app_context():
        sync_district(dbsession(), load_district(district_config(tmp_path)))  # `tipline init`
        db.session.commit()
    later = time.monotonic() + RULES_TTL + 1
    monkeypatch.setattr(svc, "clock", lambda: later)
    assert client.post("/sms/inbound", data=second).status_code == 200
    with app.app_context():
        before, after = db.session.scalars(select(Tip).order_by(Tip.created_at)).all()
        assert before.category != "weapon"
        assert (after.severity, after.category) == ("critical", "weapon")


def test_district_words_that_stop_compiling_keep_the_rules_in_use(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = services(app)
    with app.app_context():
        sync_district(dbsession(), load_district(district_config(tmp_path)))
        db.session.commit()
        svc.forget_rules()
        assert classify(TEXT, rules=svc.rules(dbsession())).category == "weapon"
        setting = dbsession().get(Setting, TRIAGE_SETTING)
        assert setting is not None
        setting.value = {"files": [str(tmp_path / "gone.toml")]}  # a rule file moved away
        db.session.commit()
        later = time.monotonic() + RULES_TTL + 1
        monkeypatch.setattr(svc, "clock", lambda: later)
        assert classify(TEXT, rules=svc.rules(dbsession())).category == "weapon"
