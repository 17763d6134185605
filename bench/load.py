"""A school emergency against the real stack: `tipline serve` (gunicorn), two `tipline worker`s
(each with its media worker), PostgreSQL, a redis-server of the bench's own, and a local fake
Twilio that notes every message it is asked to send.

Load: 2,000 signed texts in 60 s from 500 phones (each phone's later texts thread into its tip)
plus 200 posts of the web form, each from a new browser session, spread over the same minute.

Prints: texts and posts accepted and lost (accepted but not in the database; must be 0),
webhook p50/p99, time from the first text to the first page, SMS per staff member, how long
the queues took to drain after the last request, and peak RSS of the web and worker processes.
Not a test. Run: python bench/load.py [--texts 2000 --seconds 60 --phones 500 --web 200]
[--threads N: gunicorn threads per web worker, default 1 as `tipline serve`]
PostgreSQL from TIPLINE_BENCH_DATABASE_URL (default postgres@127.0.0.1).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from _stack import ACCOUNT_SID, AUTH_TOKEN, REPO, database, free_port, wait_http
from alerting import FakeTwilio, figures, own_redis
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

SCHOOL_NUMBER = "+15550000100"  # lincoln, in config/example.toml
WARM_NUMBER = "+15550000200"  # washington: the warm-up's tips, kept apart from the figures
TEXTS = [
    "someone is shooting in the east hallway, we are hiding in room 204",
    "there is a guy with a gun by the cafeteria right now",
    "we heard shots near the gym, please send help",
    "lockdown, a kid is bleeding in the B hall",
    "i think the shooter went toward the library",
    "my friend is hurt, we are in the band room",
    "is this real? everyone is running out the back doors",
    "teacher says stay put, we are in portable 4",
]
WEB_TEXTS = [
    "I saw someone with a gun near the bus loop, they went inside",
    "Shots fired near the front office, people are hiding",
    "A student is hurt in the east stairwell and needs help",
]
QUEUES = ("alerts", "default", "media")
TOKEN_FIELD = re.compile(r'name="(csrf_token|form_token)"[^>]*value="([^"]+)"')


class Load:
    """Sends the texts and posts on a timeline; keeps each request's outcome and duration."""

    def __init__(self, port: int, public: str) -> None:
        self.port, self.public = port, public
        self.validator = RequestValidator(AUTH_TOKEN)
        self.lock = threading.Lock()
        self.webhook_ms: list[float] = []
        self.texts_ok = 0
        self.texts_failed: Counter[int] = Counter()
        self.posts_ok = 0
        self.posts_failed: Counter[str] = Counter()
        self.first_sent: float | None = None
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return conn

    def text(self, phone: str, body: str, to: str = SCHOOL_NUMBER) -> None:
        params = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": phone,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }
        sig = self.validator.compute_signature(self.public + "/sms/inbound", params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sig,
        }
        t0 = time.perf_counter()
        with self.lock:  # wall-clock, as the fake Twilio notes its arrivals
            self.first_sent = self.first_sent or time.time()
        try:
            conn = self._conn()
            conn.request(
                "POST", "/sms/inbound", body=urllib.parse.urlencode(params), headers=headers
            )
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            self.local.conn = None
            status = 0
        elapsed = (time.perf_counter() - t0) * 1000
        with self.lock:
            self.webhook_ms.append(elapsed)
            if status == 200:
                self.texts_ok += 1
            else:
                self.texts_failed[status] += 1

    def post(self, n: int, school: str = "lincoln") -> None:
        """One student on the web: a fresh browser session, the form, then the tip."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        url = f"http://127.0.0.1:{self.port}/tip/{school}"
        try:
            with opener.open(url, timeout=60) as resp:
                fields = dict(TOKEN_FIELD.findall(resp.read().decode()))
            body = urllib.parse.urlencode({**fields, "text": f"{WEB_TEXTS[n % 3]} ({n})"})
            with opener.open(url, data=body.encode(), timeout=60) as resp:
                page = resp.read().decode()
            outcome = "ok" if 'id="receipt-code"' in page else "no receipt"
        except urllib.error.HTTPError as e:
            outcome = f"http {e.code}"
        except OSError as e:
            outcome = type(e).__name__
        with self.lock:
            if outcome == "ok":
                self.posts_ok += 1
            else:
                self.posts_failed[outcome] += 1

    def run(self, texts: int, phones: int, posts: int, seconds: float) -> float:
        """Everything on schedule (as far as the machine keeps up); returns when the last
        request was answered (perf_counter)."""
        plan: list[tuple[float, str, int]] = []
        for i in range(texts):
            plan.append((seconds * i / max(1, texts), "text", i))
        for j in range(posts):
            plan.append((seconds * (j + 0.5) / max(1, posts), "post", j))
        plan.sort()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=48) as pool:
            for at, kind, i in plan:
                time.sleep(max(0.0, start + at - time.perf_counter()))
                if kind == "text":
                    phone = f"+1555{3000000 + i % phones:07d}"
                    pool.submit(self.text, phone, f"{TEXTS[i % len(TEXTS)]} #{i}")
                else:
                    pool.submit(self.post, i)
        return time.perf_counter()


class RssWatch(threading.Thread):
    """Peak resident memory of each process tree, from /proc, every half second."""

    def __init__(self, roots: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.peak_total: dict[str, int] = dict.fromkeys(roots, 0)
        self.peak_one: dict[str, int] = dict.fromkeys(roots, 0)
        self.stopping = threading.Event()

    @staticmethod
    def _table() -> dict[int, tuple[int, int]]:
        """pid -> (parent pid, RSS in bytes)."""
        out = {}
        page = os.sysconf("SC_PAGE_SIZE")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            out[int(entry)] = (int(fields[1]), int(fields[21]) * page)
        return out

    def run(self) -> None:
        while not self.stopping.is_set():
            table = self._table()
            for name, root in self.roots.items():
                tree, frontier = {root}, [root]
                while frontier:
                    parent = frontier.pop()
                    kids = [p for p, (pp, _) in table.items() if pp == parent]
                    tree.update(kids)
                    frontier.extend(kids)
                sizes = [table[p][1] for p in tree if p in table]
                self.peak_total[name] = max(self.peak_total[name], sum(sizes))
                self.peak_one[name] = max([self.peak_one[name], *sizes])
            self.stopping.wait(0.5)


def staff_phones() -> dict[str, str]:
    config = tomllib.loads((REPO / "config" / "example.toml").read_text())
    return {s["phone"]: s["id"] for s in config["staff"] if s.get("phone")}


def drained(r: redis.Redis, engine: object) -> bool:
    for name in QUEUES:
        if r.llen(f"rq:queue:{name}") or r.zcard(f"rq:wip:{name}"):
            return False
    if r.llen("tipline:route-handoff"):
        return False
    with engine.connect() as conn:  # type: ignore[attr-defined]
        left = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM tip WHERE needs_routing) + "
                "(SELECT count(*) FROM attachment WHERE status IN ('pending', 'checking')) + "
                "(SELECT count(*) FROM outbound_message WHERE status IN ('pending', 'retry'))"
            )
        ).scalar()
    return not left


def main() -> None:  # noqa: PLR0915 - one scenario, top to bottom
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--phones", type=int, default=500)
    parser.add_argument("--web", type=int, default=200, help="web form posts")
    parser.add_argument("--threads", type=int, default=1, help="`tipline serve --threads`")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    args = parser.parse_args()

    fake = FakeTwilio()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="tipline-bench-load-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with database() as db_url, own_redis(workdir) as (redis_url, _redis_proc):
            env = {
                **os.environ,
                "TIPLINE_INSTANCE": str(workdir / "instance"),
                "TIPLINE_CONFIG": str(REPO / "config" / "example.toml"),
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
            tipline = [sys.executable, "-m", "tipline"]
            log = (workdir / "processes.log").open("wb")
            for cmd in (
                [*tipline, "serve", "--port", str(port), "--workers", "2"]
                + ["--threads", str(args.threads)],
                [*tipline, "worker"],
                [*tipline, "worker"],
            ):
                procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=log))
            wait_http(f"{public}/livez", timeout=60)
            time.sleep(5)  # the workers warm up and start their media workers
            watch = RssWatch(
                {"web": procs[0].pid, "worker 1": procs[1].pid, "worker 2": procs[2].pid}
            )
            watch.start()

            warm = Load(port, public)  # each gunicorn worker's first requests are cold
            for i in range(20):
                warm.text(f"+1555{4000000 + i:07d}", TEXTS[i % len(TEXTS)], to=WARM_NUMBER)
            warm.post(0, school="washington")
            time.sleep(3)
            load = Load(port, public)
            last = load.run(args.texts, args.phones, args.web, args.seconds)
            r = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + args.drain_timeout
            while not drained(r, engine) and time.monotonic() < deadline:
                time.sleep(0.2)
            drain = time.perf_counter() - last
            watch.stopping.set()
            watch.join()
            with engine.connect() as conn:
                stored_texts = conn.execute(
                    text("SELECT count(*) FROM inbound_sid WHERE reply_kind <> 'staff'")
                ).scalar() - len(warm.webhook_ms)
                stored_web = conn.execute(
                    text(
                        "SELECT count(*) FROM tip t JOIN school s ON s.id = t.school_id "
                        "WHERE t.source = 'web' AND s.slug = 'lincoln'"
                    )
                ).scalar()
                tips = conn.execute(
                    text(
                        "SELECT count(*) FROM tip t JOIN school s ON s.id = t.school_id "
                        "WHERE s.slug = 'lincoln'"
                    )
                ).scalar()
                incidents = conn.execute(text("SELECT count(*) FROM incident")).scalar()
            engine.dispose()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        fake.server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)

    phones = staff_phones()
    with fake.lock:
        to_staff = [
            (t, to)
            for t, to, _body in fake.messages
            if to in phones and load.first_sent is not None and t >= load.first_sent
        ]
    per_staff = Counter(phones[to] for _t, to in to_staff)
    first_page = min((t for t, _ in to_staff), default=None)
    mib = 1024 * 1024
    print(
        f"load: {args.texts} texts in {args.seconds:.0f} s from {args.phones} phones, "
        f"{args.web} web posts; gunicorn 2 workers x {args.threads} threads, "
        "2 tipline workers (+ their media workers)"
    )
    print(
        f"texts: accepted {load.texts_ok}, refused {dict(load.texts_failed) or 0}, "
        f"stored {stored_texts}, lost {max(0, load.texts_ok - int(stored_texts or 0))}"
    )
    print(
        f"web posts: accepted {load.posts_ok}, refused {dict(load.posts_failed) or 0}, "
        f"stored {stored_web}, lost {max(0, load.posts_ok - int(stored_web or 0))}"
    )
    print(f"tips at the school {tips}, incidents (both schools) {incidents}")
    print(figures("webhook", load.webhook_ms))
    if first_page is not None and load.first_sent is not None:
        first_ms = (first_page - load.first_sent) * 1000
        print(f"time from the first text to the first page: {first_ms:.0f} ms")
    else:
        print("time to the first page: no page")
    print("SMS per staff member: " + ", ".join(f"{k} {v}" for k, v in sorted(per_staff.items())))
    print(f"queue drain after the last request: {drain:.1f} s")
    for name in watch.roots:
        print(
            f"peak RSS {name}: {watch.peak_total[name] / mib:.0f} MiB for the process tree, "
            f"{watch.peak_one[name] / mib:.0f} MiB the largest process"
        )


if __name__ == "__main__":
    main()
