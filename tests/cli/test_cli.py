"""The `tipline` command: clear one-line errors, create-user, works from any directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from tipline.cli import main
from tipline.extensions import db
from tipline.models import User
from tipline.platform.services import services
from tipline.staff.accounts import totp_secret
from tipline.vault.passwords import verify_secret


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tipline", *args],
        env={**env, "PATH": "/usr/bin:/bin"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


def test_unreachable_database_is_one_line_and_nonzero(env: dict[str, str]) -> None:
    proc = run(["init"], {**env, "TIPLINE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "database" in lines[0]


def test_bad_master_key_variable_is_one_line_and_nonzero(env: dict[str, str]) -> None:
    proc = run(["rotate-key"], {**env, "TIPLINE_MASTER_KEYS": "k1:short"})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "TIPLINE_MASTER_KEYS" in lines[0]
    assert "'k1'" in lines[0]


def test_create_user_with_totp_and_staff_link(app: Flask, env: dict[str, str]) -> None:
    secret = pyotp.random_base32()
    result = CliRunner().invoke(
        main,
        [
            "create-user",
            "Dana.Ruiz@Example.org",
            "--role",
            "sro",
            "--school",
            "lincoln",
            "--password-stdin",
            "--totp-secret",
            secret,
            "--staff",
            "ruiz",
        ],
        input="correct horse battery staple\n",
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "dana.ruiz@example.org")).one()
        assert user.role == "sro"
        assert [s.slug for s in user.schools] == ["lincoln"]
        assert user.staff is not None
        assert user.staff.key == "ruiz"
        assert verify_secret(user.password_hash, "correct horse battery staple")
        assert totp_secret(services(app).vault, user) == secret
        assert secret.encode() not in (user._totp_secret or b"")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["create-user", "x@example.org", "--role", "sro", "--password-stdin"],
            "short\n",
            "at least 12",
        ),
        (
            [
                "create-user",
                "x@example.org",
                "--role",
                "sro",
                "--school",
                "nowhere",
                "--password-stdin",
            ],
            "long enough password\n",
            "unknown school 'nowhere'",
        ),
        (
            [
                "create-user",
                "x@example.org",
                "--role",
                "sro",
                "--staff",
                "ghost",
                "--password-stdin",
            ],
            "long enough password\n",
            "unknown staff id 'ghost'",
        ),
        (
            [
                "create-user",
                "x@example.org",
                "--role",
                "sro",
                "--password-stdin",
                "--totp-secret",
                "not base32!",
            ],
            "long enough password\n",
            "base32",
        ),
        (["create-user", "x@example.org", "--role", "sro"], "", "--password-stdin"),
    ],
)
def test_create_user_rejects_bad_input_in_one_line(
    app: Flask, env: dict[str, str], args: list[str], stdin: str, message: str
) -> None:
    proc = run(args, env, stdin)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_commands_work_from_any_directory(env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tipline", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    for command in (
        "init",
        "serve",
        "worker",
        "dev",
        "create-user",
        "triage",
        "rotate-key",
        "purge",
    ):
        assert command in proc.stdout


def test_triage_loads_neither_the_web_app_nor_the_worker() -> None:
    """`tipline triage` runs in a second on a laptop: its subcommand is loaded alone."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tipline.cli import main\n"
        "result = CliRunner().invoke(main, ['triage', 'he has a gun in his backpack'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ('flask', 'workers', 'rq', 'redis', 'twilio', 'gunicorn', 'alembic')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m == 'tipline.app'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.strip() == "[]"
