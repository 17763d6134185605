"""Half a Twilio configuration is refused at start: never console mode by accident.

The attack: an operator sets TWILIO_AUTH_TOKEN and forgets the SID (or the other way round);
before, the app started in console mode and accepted unsigned webhooks from anyone.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, TEST_KEY_1
from tipline.errors import ConfigError
from tipline.settings import load_settings
from tipline.web.twiliohooks import signature_refusal

HALVES = [
    pytest.param({"TWILIO_AUTH_TOKEN": AUTH_TOKEN}, "TWILIO_ACCOUNT_SID", id="token-only"),
    pytest.param({"TWILIO_ACCOUNT_SID": ACCOUNT_SID}, "TWILIO_AUTH_TOKEN", id="sid-only"),
]


def _env(tmp_path: Path, twilio: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIPLINE_", "TWILIO_"))}
    return {
        **base,
        "TIPLINE_INSTANCE": str(tmp_path / "instance"),
        "TIPLINE_MASTER_KEYS": TEST_KEY_1,
        "TIPLINE_SECRET_KEY": "x" * 32,
        "TIPLINE_REDIS_URL": "redis://127.0.0.1:1/0",  # never reached: settings fail first
        **twilio,
    }


@pytest.mark.parametrize("command", ["serve", "worker", "dev"])
@pytest.mark.parametrize(("twilio", "missing"), HALVES)
def test_half_a_twilio_configuration_stops_the_command_in_one_line(
    tmp_path: Path, command: str, twilio: dict[str, str], missing: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tipline", command, "--port", "1"]
        if command != "worker"
        else [sys.executable, "-m", "tipline", command, "--burst"],
        env=_env(tmp_path, twilio),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert missing in lines[0]


def test_the_api_base_url_alone_is_console_mode(tmp_path: Path) -> None:
    settings = load_settings({"TWILIO_API_BASE_URL": "http://127.0.0.1:9"}, cwd=tmp_path)
    assert not settings.twilio_enabled


@pytest.mark.parametrize(("twilio", "missing"), HALVES)
def test_settings_refuse_half_a_twilio_configuration(
    tmp_path: Path, twilio: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError, match=missing):
        load_settings(twilio, cwd=tmp_path)


def test_no_settings_object_can_drop_the_sid_and_keep_the_token(tmp_path: Path) -> None:
    settings = load_settings(
        {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}, cwd=tmp_path
    )
    with pytest.raises(ConfigError):
        dataclasses.replace(settings, twilio_account_sid=None)


def test_the_signature_is_checked_whenever_the_auth_token_is_set(tmp_path: Path) -> None:
    settings = load_settings(
        {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}, cwd=tmp_path
    )
    form = MultiDict({"From": "+15551230001", "Body": "hi"})
    url = PUBLIC_URL + "/sms/inbound"
    assert signature_refusal(settings, url, form, "", None) == "missing Twilio signature"
    assert signature_refusal(settings, url, form, "bogus", None) == "wrong Twilio signature"
