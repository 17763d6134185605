"""The staff workspace under a district's history: 50,000 tips in PostgreSQL.

Real stack: `tipline serve` (gunicorn, 2 workers), one `tipline worker`, PostgreSQL and a Redis
db of the bench's own, Twilio faked on loopback (nothing here pages anyone but the warm-up).
Staff sign in through the real forms (password, then TOTP) and measure, with one client at a time:
  - the queue page (`/admin/`, default filter, and filtered by severity and by school),
  - a tip's page (`/admin/tips/<id>`, random tips),
  - the dashboard (`/admin/dashboard`: the charts, drawn server-side, over every school),
  - search in the decrypted text of the filtered tips (`/admin/?q=...`, when the app has it),
then 10 signed-in staff keep the queue open (each polls `/admin/queue/live` every 3 s with its
ETag, as the page's script does) while signed Twilio webhooks arrive at 5 a second: their p99.

Targets: queue p95 < 150 ms, tip page p95 < 100 ms, search p95 < 300 ms, webhook p99 < 150 ms
while 10 queues poll. Prints figures; not a test. Run: python bench/admin.py [--tips 50000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pyotp
import requests
from _stack import ACCOUNT_SID, AUTH_TOKEN, free_port, process, tipline_env, wait_http
from sqlalchemy import create_engine, insert, select, text
from twilio.request_validator import RequestValidator

from tipline.models import DataKey, School, Tip
from tipline.settings import load_settings
from tipline.triage import classify
from tipline.vault.keyring import Vault

PASSWORD = "bench password for staff logins"  # noqa: S105 - the bench's own throwaway logins
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"  # noqa: S105 - their TOTP secret, as the tests use
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
TEMPLATES = [
    "someone is selling vapes in the {place} bathroom",
    "{name} keeps pushing {other} into the lockers by the {place}",
    "{name} said he is bringing a gun to school tomorrow",
    "i think {name} is cutting herself, she showed me her arm",
    "there was a fight by the {place} after lunch, it is over now",
    "{name} posted that everyone at the {place} will pay on friday",
    "my friend {name} says her stepdad hits her when he drinks",
    "people keep making fun of {other} online and she stopped coming",
    "{name} has weed in his backpack in the {place}",
    "somebody wrote a threat on the wall of the {place}",
    "{name} dice que va a traer una pistola mañana",
    "mi amiga {name} dice que ya no quiere vivir",
    "hay chicos vendiendo drogas en el {place}",
    "is the tip line open on weekends",
]
NAMES = ["Jaylen", "Marcus", "Ava", "Sofia", "Devon", "Maya", "Luis", "Emma", "Noah", "Zoe"]
PLACES = ["gym", "cafeteria", "east stairwell", "bus loop", "library", "band room", "B hall"]
WORDS = ["vapes", "gun", "cutting", "fight", "lockers", "pistola", "weekends", "threat"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * p) - 1))]


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    return (
        f"{name}: n={len(values)} p50 {statistics.median(values):.1f} ms  "
        f"p95 {pct(values, 0.95):.1f} ms  p99 {pct(values, 0.99):.1f} ms  "
        f"max {max(values):.1f} ms"
    )


def seed(env: dict[str, str], count: int) -> list[str]:
    """`count` sealed tips over the last year, as intake would store them; returns their ids.

    Written with bulk inserts (one data key per tip, sealed body and verdict), not through the
    webhook: the bench measures reading, and 50,000 webhooks would take minutes.
    """
    settings = load_settings(env)
    vault = Vault(settings.master_keys)
    engine = create_engine(settings.database_url)
    rng = random.Random(7)
    verdicts: dict[str, Any] = {}
    ids: list[str] = []
    now = datetime.now(UTC)
    with engine.begin() as conn:
        schools = [row[0] for row in conn.execute(select(School.id))]
    next_code = dict.fromkeys(schools, 10000)
    for start in range(0, count, 1000):
        keys, tips = [], []
        for _ in range(min(1000, count - start)):
            template = rng.choice(TEMPLATES)
            body = template.format(
                name=rng.choice(NAMES), other=rng.choice(NAMES), place=rng.choice(PLACES)
            )
            verdict = verdicts.get(body) or verdicts.setdefault(body, classify(body))
            tip_id, school = uuid.uuid4().hex, rng.choice(schools)
            fresh = vault.new_wrapped_key()
            keys.append(
                {"id": fresh.id, "master_key_id": fresh.master_key_id, "wrapped": fresh.wrapped}
            )
            at = now - timedelta(seconds=rng.randint(60, 365 * 86400))
            details = {"reasons": list(verdict.reasons), "spans": [], "language": verdict.language}
            next_code[school] += 1
            tips.append(
                {
                    "id": tip_id,
                    "school_id": school,
                    "code": f"T{next_code[school]}",
                    "source": rng.choice(["sms", "web"]),
                    "severity": verdict.severity,
                    "category": verdict.category,
                    "language": verdict.language,
                    "status": rng.choices(["new", "open", "closed"], [1, 2, 12])[0],
                    "data_key_id": fresh.id,
                    "body": fresh.seal("tip", "body", tip_id, body.encode()),
                    "triage": fresh.seal("tip", "triage", tip_id, json.dumps(details).encode()),
                    "created_at": at,
                    "last_activity_at": at,
                    "needs_routing": False,
                    "routed_at": at,
                    "message_count": 1,
                }
            )
            ids.append(tip_id)
        with engine.begin() as conn:
            conn.execute(insert(DataKey), keys)
            conn.execute(insert(Tip.__table__), tips)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return ids


class Staff:
    """One signed-in browser: password, then TOTP, through the real forms."""

    def __init__(self, base: str, email: str) -> None:
        self.base, self.http = base, requests.Session()
        self.csrf = ""
        self._sign_in(email)

    def _token(self, path: str) -> str:
        found = CSRF.search(self.http.get(self.base + path, timeout=30).text)
        if found is None:
            raise SystemExit(f"no CSRF token on {path}")
        return found.group(1)

    def _sign_in(self, email: str) -> None:
        self.http.post(
            self.base + "/admin/login",
            data={"email": email, "password": PASSWORD, "csrf_token": self._token("/admin/login")},
            timeout=30,
        )
        done = self.http.post(
            self.base + "/admin/login/totp",
            data={"code": pyotp.TOTP(SECRET).now(), "csrf_token": self._token("/admin/login/totp")},
            timeout=30,
            allow_redirects=False,
        )
        if done.status_code != 302:
            raise SystemExit(f"{email} could not sign in ({done.status_code})")

    def timed(self, path: str) -> tuple[float, requests.Response]:
        t0 = time.perf_counter()
        response = self.http.get(self.base + path, timeout=60)
        return (time.perf_counter() - t0) * 1000, response


def create_logins(env: dict[str, str], count: int) -> list[str]:
    emails = [f"bench.admin{i}@example.org" for i in range(count)]
    for email in emails:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tipline",
                "create-user",
                email,
                "--role",
                "district",
                "--password-stdin",
                "--totp-secret",
                SECRET,
            ],
            input=PASSWORD.encode(),
            env=env,
            check=True,
            capture_output=True,
        )
    return emails


def measure(staff: Staff, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        ms, response = staff.timed(path)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code}")
        out.append(ms)
    return out


def poll(staff: Staff, stop: threading.Event, counts: dict[str, int]) -> None:
    etag = None
    while not stop.is_set():
        headers = {"If-None-Match": etag} if etag else {}
        response = staff.http.get(staff.base + "/admin/queue/live", headers=headers, timeout=30)
        etag = response.headers.get("ETag", etag)
        counts[str(response.status_code)] = counts.get(str(response.status_code), 0) + 1
        stop.wait(3.0)


def webhooks(port: int, public: str, seconds: float, rate: float) -> list[float]:
    import http.client  # noqa: PLC0415 - only this part speaks raw HTTP

    validator = RequestValidator(AUTH_TOKEN)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[float] = []
    start, i = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        params = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+1555{uuid.uuid4().int % 10**7:07d}",
            "To": "+15550000100",
            "Body": TEMPLATES[i % len(TEMPLATES)].format(name="Ava", other="Zoe", place="gym"),
            "NumMedia": "0",
        }
        signature = validator.compute_signature(public + "/sms/inbound", params)
        t0 = time.perf_counter()
        conn.request(
            "POST",
            "/sms/inbound",
            body=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )
        conn.getresponse().read()
        out.append((time.perf_counter() - t0) * 1000)
        i += 1
    conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tips", type=int, default=50000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--pollers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0, help="webhooks while polling")
    args = parser.parse_args()

    port = free_port()
    public = f"http://127.0.0.1:{port}"
    rng = random.Random(11)
    with tipline_env(public) as env:
        t0 = time.perf_counter()
        ids = seed(env, args.tips)
        print(f"seeded {len(ids)} tips in {time.perf_counter() - t0:.0f} s")
        emails = create_logins(env, args.pollers + 1)
        serve = [sys.executable, "-m", "tipline", "serve", "--port", str(port), "--workers", "2"]
        worker = [sys.executable, "-m", "tipline", "worker"]
        with process(serve, env), process(worker, env):
            wait_http(f"{public}/livez")
            reader = Staff(public, emails[0])
            measure(reader, ["/admin/"] * 5 + [f"/admin/tips/{i}" for i in ids[:5]])  # warm-up
            queue = measure(reader, ["/admin/"] * args.samples)
            filtered = measure(
                reader,
                [
                    f"/admin/?severity=critical&status=all&page={1 + n % 5}"
                    for n in range(args.samples)
                ],
            )
            tips = measure(reader, [f"/admin/tips/{rng.choice(ids)}" for _ in range(args.samples)])
            dashboard = measure(reader, ["/admin/dashboard"] * max(5, args.samples // 5))
            probe_ms, probe = reader.timed("/admin/?status=all&q=gun")
            search: list[float] = []
            if 'name="q"' in probe.text:
                search = measure(
                    reader,
                    [f"/admin/?status=all&q={rng.choice(WORDS)}" for _ in range(args.samples)],
                )
            pollers = [Staff(public, email) for email in emails[1:]]
            stop, counts = threading.Event(), {}
            threads = [
                threading.Thread(target=poll, args=(s, stop, counts), daemon=True) for s in pollers
            ]
            for thread in threads:
                thread.start()
            hooks = webhooks(port, public, args.seconds, 5.0)
            stop.set()
            for thread in threads:
                thread.join(timeout=10)

    print(f"{args.tips} tips in PostgreSQL; gunicorn 2 sync workers; one client at a time")
    print(line("queue page /admin/ (active)", queue))
    print(line("queue page, critical, all statuses, pages 1-5", filtered))
    print(line("tip page /admin/tips/<id>", tips))
    print(line("dashboard /admin/dashboard (charts over every school)", dashboard))
    if search:
        print(line("search ?q=<word> over all statuses", search))
    else:
        print(f"search: the queue has no search box yet (probe {probe_ms:.0f} ms)")
    print(line(f"signed webhooks at 5/s while {len(pollers)} queues poll every 3 s", hooks))
    print(f"poll answers by status: {counts}")
    print(
        "targets: queue p95 < 150 ms, tip page p95 < 100 ms, search p95 < 300 ms, "
        "webhook p99 < 150 ms"
    )


if __name__ == "__main__":
    main()
