"""`tipline check`: exit 0 when the deployment holds, else one line per problem and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from flask import Flask

from tests.conftest import PUBLIC_URL
from tests.support.fakes import FakeTwilio

LINCOLN, WASHINGTON = "+15550000100", "+15550000200"
WEBHOOK = f"{PUBLIC_URL}/sms/inbound"


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tipline", "check"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def numbers(fake_twilio: FakeTwilio) -> dict[str, dict[str, str]]:
    fake_twilio.numbers = {LINCOLN: {"sms_url": WEBHOOK}, WASHINGTON: {"sms_url": WEBHOOK}}
    return fake_twilio.numbers


def test_a_deployment_that_holds_exits_0(
    twilio_app: Flask, twilio_env: dict[str, str], numbers: dict[str, dict[str, str]]
) -> None:
    done = run_check(twilio_env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("ok")


def test_wrong_and_missing_webhooks_are_one_line_each(
    twilio_app: Flask, twilio_env: dict[str, str], numbers: dict[str, dict[str, str]]
) -> None:
    numbers[LINCOLN] = {"sms_url": "https://old.example.org/sms"}
    del numbers[WASHINGTON]
    done = run_check(twilio_env)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert LINCOLN in lines[0]
    assert "https://old.example.org/sms" in lines[0]
    assert WEBHOOK in lines[0]
    assert WASHINGTON in lines[1]
    assert "not a number of this account" in lines[1]


def test_redis_database_and_console_mode_are_reported(
    twilio_app: Flask, env: dict[str, str], tmp_path: os.PathLike[str]
) -> None:
    broken = {
        **env,
        "TIPLINE_REDIS_URL": "redis://127.0.0.1:1/0",
        "TIPLINE_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db",
    }
    done = run_check(broken)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["database", "redis", "twilio"], lines


def test_bad_configuration_is_one_line(env: dict[str, str], tmp_path: os.PathLike[str]) -> None:
    done = run_check({**env, "TIPLINE_MASTER_KEYS": "not-a-key"})
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("configuration: ")


def test_a_schema_behind_the_package_names_both_revisions(
    twilio_app: Flask, twilio_env: dict[str, str], numbers: dict[str, dict[str, str]]
) -> None:
    from sqlalchemy import text  # noqa: PLC0415

    from tipline.cli.check_cmd import package_head  # noqa: PLC0415
    from tipline.extensions import db  # noqa: PLC0415

    head = package_head()
    with twilio_app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = '0008_staff_sessions'"))
        db.session.commit()
    try:
        done = run_check(twilio_env)
    finally:
        with twilio_app.app_context():
            db.session.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})
            db.session.commit()
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("database: ")
    assert "0008_staff_sessions" in line
    assert str(head) in line
