"""Signed SMS webhooks per second through the real stack, against an empty Flask route.

Both servers are gunicorn with the same number of workers, loaded by the same client (16
concurrent connections from 2 processes, sharing the machine's cores), in alternating rounds.
Prints the median rate of each, the ratio (and each round's), and p50/p99 latency.
Floor: ratio >= 0.30, p99 < 150 ms. Run: python bench/intake.py
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from _stack import ACCOUNT_SID, AUTH_TOKEN, free_port, process, tipline_env, wait_http
from twilio.request_validator import RequestValidator

EMPTY_APP = """
from flask import Flask, Response
app = Flask(__name__)

@app.post("/sms/inbound")
def inbound():
    return Response("<?xml version=\\"1.0\\"?><Response/>", mimetype="text/xml")

@app.get("/livez")
def livez():
    return "ok"
"""

TEXTS = [
    "someone said there will be a fight after school by the gym",
    "kid in 8th grade selling vapes in the bathroom",
    "my friend keeps saying she wants to die, please help her",
    "he showed a knife at lunch today",
]


def build_requests(public_url: str, n: int, seed: int) -> list[tuple[bytes, dict[str, str]]]:
    """n signed webhooks from n distinct phones (distinct tips, as in a real evening)."""
    validator = RequestValidator(AUTH_TOKEN)
    out = []
    for i in range(n):
        params = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+1555{seed % 100:02d}{i:05d}",
            "To": "+15550000100",
            "Body": TEXTS[i % len(TEXTS)],
            "NumMedia": "0",
        }
        sig = validator.compute_signature(public_url + "/sms/inbound", params)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}
        out.append((urlencode(params).encode(), headers))
    return out


def client(
    port: int, reqs: list[tuple[bytes, dict[str, str]]], threads: int, out: mp.Queue
) -> None:  # type: ignore[type-arg]
    import threading  # noqa: PLC0415

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    chunks = [reqs[i::threads] for i in range(threads)]

    def run(chunk: list[tuple[bytes, dict[str, str]]]) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local: list[float] = []
        bad = 0
        for body, headers in chunk:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/sms/inbound", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    bad += 1
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
            local.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(local)
            errors += bad

    ts = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((latencies, errors))


def load(
    port: int, public_url: str, n: int, concurrency: int = 16, procs: int = 2, offset: int = 0
) -> dict[str, float]:
    per = n // procs
    batches = [build_requests(public_url, per, p + offset) for p in range(procs)]
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    workers = [mp.Process(target=client, args=(port, b, concurrency // procs, q)) for b in batches]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    results = [q.get() for _ in workers]
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.join()
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    return {
        "rate": len(lat) / elapsed,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[int(len(lat) * 0.99) - 1] * 1000,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="per side and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="threads per tipline worker")
    args = parser.parse_args()

    tport, eport = free_port(), free_port()
    public = f"http://127.0.0.1:{tport}"
    with tempfile.TemporaryDirectory() as tmp, tipline_env(public) as env:
        Path(tmp, "empty_app.py").write_text(EMPTY_APP)
        gunicorn = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{eport}",
            "--threads",
            str(args.threads),
            "--worker-class",
            "gthread" if args.threads > 1 else "sync",
            "--keep-alive",
            "5",
            "empty_app:app",
        ]
        tipline = [
            sys.executable,
            "-m",
            "tipline",
            "serve",
            "--port",
            str(tport),
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
        ]
        with process(gunicorn, env, Path(tmp)), process(tipline, env):
            wait_http(f"http://127.0.0.1:{eport}/livez")
            wait_http(f"{public}/livez")
            load(eport, public, 400, args.concurrency)  # warm-up
            load(tport, public, 400, args.concurrency, offset=2)
            empties, reals = [], []
            for n in range(args.rounds):  # alternated, so a noisy moment hits both sides
                empties.append(load(eport, public, args.requests, args.concurrency))
                reals.append(load(tport, public, args.requests, args.concurrency, offset=4 + 2 * n))
    empty, real = _median(empties), _median(reals)
    print(
        f"empty Flask route :   {empty['rate']:6.1f} req/s  p50 {empty['p50']:6.1f} ms  "
        f"p99 {empty['p99']:6.1f} ms  errors {empty['errors']:.0f}"
    )
    print(
        f"tipline /sms/inbound: {real['rate']:6.1f} req/s  p50 {real['p50']:6.1f} ms  "
        f"p99 {real['p99']:6.1f} ms  errors {real['errors']:.0f}"
    )
    ratios = " ".join(f"{r['rate'] / e['rate']:.2f}" for e, r in zip(empties, reals, strict=True))
    print(
        f"ratio {real['rate'] / empty['rate']:.2f} (floor 0.30, aim 0.40; rounds: {ratios}); "
        f"p99 {real['p99']:.1f} ms (floor < 150 ms); {args.workers} workers, "
        f"{args.threads} threads each, {args.concurrency} concurrent clients, "
        f"{args.rounds} rounds of {args.requests} requests each"
    )


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per figure, the median over the rounds (errors: the total)."""
    out = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    out["errors"] = sum(run["errors"] for run in runs)
    return out


if __name__ == "__main__":
    main()
