"""Settings from the environment: a pure function, secrets from instance/ when not given."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from tipline.errors import ConfigError
from tipline.settings import load_settings, parse_master_keys

KEY = base64.b64encode(b"\x07" * 32).decode()


def test_instance_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_settings({}, cwd=tmp_path)
    second = load_settings({}, cwd=tmp_path)
    assert first.master_keys == second.master_keys
    assert first.secret_key == second.secret_key
    for name in ("master_keys", "secret_key"):
        mode = stat.S_IMODE((tmp_path / "instance" / name).stat().st_mode)
        assert mode == 0o600
    assert first.database_url == f"sqlite:///{tmp_path / 'instance' / 'tipline.db'}"
    assert first.redis_url is None
    assert not first.twilio_enabled


def test_plain_postgresql_url_uses_the_installed_driver(tmp_path: Path) -> None:
    s = load_settings({"TIPLINE_DATABASE_URL": "postgresql://u:p@db/tips"}, cwd=tmp_path)
    assert s.database_url == "postgresql+psycopg://u:p@db/tips"


def test_master_keys_keep_their_order() -> None:
    other = base64.b64encode(b"\x08" * 32).decode()
    keys = parse_master_keys(f"new:{KEY}, old:{other}")
    assert [k for k, _ in keys] == ["new", "old"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "no keys"),
        ("nocolon", "id:base64key"),
        ("k1:not-base64!!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "32 bytes"),
        (f"k1:{KEY},k1:{KEY}", "appears twice"),
    ],
)
def test_bad_master_keys_name_the_variable(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_master_keys(raw)
    assert "TIPLINE_MASTER_KEYS" in str(err.value)


def test_bad_public_url_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TIPLINE_PUBLIC_URL"):
        load_settings({"TIPLINE_PUBLIC_URL": "tips.example.org"}, cwd=tmp_path)


def test_twilio_shared_keys_are_read_by_key_id(tmp_path: Path) -> None:
    s = load_settings(
        {"TWILIO_WEBHOOK_SHARED_KEYS": "webhooks_sharedkey_a:s3cret, webhooks_sharedkey_b:x:y"},
        cwd=tmp_path,
    )
    assert dict(s.twilio_shared_keys) == {
        "webhooks_sharedkey_a": "s3cret",
        "webhooks_sharedkey_b": "x:y",  # a secret may hold a colon; an id does not
    }
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("raw", "message"), [("nocolon", "keyid:secret"), (":s", "keyid:secret"), ("a:1,a:2", "twice")]
)
def test_bad_twilio_shared_keys_name_the_variable(tmp_path: Path, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_settings({"TWILIO_WEBHOOK_SHARED_KEYS": raw}, cwd=tmp_path)
    assert "TWILIO_WEBHOOK_SHARED_KEYS" in str(err.value)
