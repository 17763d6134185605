"""Shared set-up for benchmarks: a PostgreSQL database and Redis db of their own, real processes."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tipline.settings import normalize_database_url

REPO = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("TIPLINE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
REDIS_SERVER = os.environ.get("TIPLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"  # noqa: S105 - the fake Twilio account of the benchmark


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def database() -> Iterator[str]:
    url = make_url(normalize_database_url(PG_SERVER))
    name = f"tipline_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextlib.contextmanager
def redis_db() -> Iterator[str]:
    """An empty Redis db number, claimed; flushed afterwards (everything in it is ours)."""
    claim = f"tipline:bench-claim:{uuid.uuid4().hex}"
    parts = urlsplit(REDIS_SERVER)
    for db in range(15, 0, -1):
        url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))
        conn = redis.Redis.from_url(url)
        if conn.dbsize() == 0 and conn.set(claim, "1", nx=True) and conn.dbsize() == 1:
            try:
                yield url
            finally:
                conn.flushdb()
                conn.close()
            return
        conn.close()
    raise SystemExit("no empty Redis db number")


@contextlib.contextmanager
def tipline_env(public_url: str) -> Iterator[dict[str, str]]:
    workdir = Path(tempfile.mkdtemp(prefix="tipline-bench-"))
    with database() as db_url, redis_db() as redis_url:
        env = {
            **os.environ,
            "TIPLINE_INSTANCE": str(workdir / "instance"),
            "TIPLINE_CONFIG": str(REPO / "config" / "example.toml"),
            "TIPLINE_DATABASE_URL": db_url,
            "TIPLINE_REDIS_URL": redis_url,
            "TIPLINE_SECRET_KEY": "bench",
            "TIPLINE_MASTER_KEYS": "b1:" + base64.b64encode(os.urandom(32)).decode(),
            "TIPLINE_PUBLIC_URL": public_url,
            "TIPLINE_LOG_LEVEL": "WARNING",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        }
        subprocess.run(
            [sys.executable, "-m", "tipline", "init"], env=env, check=True, capture_output=True
        )
        try:
            yield env
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback only
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> Iterator[None]:
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
