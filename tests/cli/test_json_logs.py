"""A real run of `tipline serve` and `tipline worker --burst`: every line they print is one JSON
object, and none holds the tip text, a phone number in any format or an IP address."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.conftest import EXAMPLE_CONFIG, sign, sms_params
from tests.support.fakes import FakeTwilio
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

TIP = "Kyle has a gun in his backpack by the zebra lockers, he says he will use it at lunch"
STUDENT = "+15551230001"


def formats(number: str) -> list[str]:
    """`number` (+1NXXNXXXXXX) the ways people and programs write it."""
    d = number[2:]
    a, b, c = d[:3], d[3:6], d[6:]
    return [
        number,
        number[1:],
        d,
        f"{a}-{b}-{c}",
        f"({a}) {b}-{c}",
        f"{a}.{b}.{c}",
        f"{a} {b} {c}",
        f"+1 {a} {b} {c}",
        f"+1 ({a}) {b}-{c}",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def livez(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def test_serve_and_worker_print_only_scrubbed_json_lines(
    twilio_app: Flask, twilio_env: dict[str, str], fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    """`twilio_app` empties the database and loads the example district first."""
    env = {**os.environ, **twilio_env, "TIPLINE_LOG_LEVEL": "DEBUG"}
    port = free_port()
    out, err = (tmp_path / "serve.out").open("wb"), (tmp_path / "serve.err").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "tipline", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=out,
        stderr=err,
    )
    try:
        wait_for(lambda: livez(port), 60, "tipline serve to listen")
        params = sms_params(TIP, from_=STUDENT)
        resp = requests.post(
            f"http://127.0.0.1:{port}/sms/inbound",
            data=params,
            headers={"X-Twilio-Signature": sign("/sms/inbound", params)},
            timeout=15,
        )
        assert resp.status_code == 200
        unsigned = requests.post(f"http://127.0.0.1:{port}/sms/inbound", data=params, timeout=15)
        assert unsigned.status_code == 403
        requests.get(f"http://127.0.0.1:{port}/no-such-page", timeout=15)
        # gunicorn's workers add up their counters in one multiprocess directory.
        scrape = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=15)
        assert scrape.status_code == 200
        assert re.search(r'^tipline_sms_inbound_total\{kind="[a-z_]+"\} 1\.0$', scrape.text, re.M)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        out.close()
        err.close()
    worker = subprocess.run(
        [sys.executable, "-m", "tipline", "worker", "--burst"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr.decode()[-2000:]
    assert fake_twilio.messages(), "the tip paged someone: the run went all the way"

    printed = {
        "serve stdout": (tmp_path / "serve.out").read_text(),
        "serve stderr": (tmp_path / "serve.err").read_text(),
        "worker stdout": worker.stdout.decode(),
        "worker stderr": worker.stderr.decode(),
    }
    staff = re.findall(r'"(\+1555\d{7})"', EXAMPLE_CONFIG.read_text())
    forbidden = [TIP, "zebra lockers", *formats(STUDENT), "127.0.0.1"]
    forbidden += [f for number in staff for f in formats(number)]
    lines = 0
    for where, text in printed.items():
        for line in text.splitlines():
            lines += 1
            record = json.loads(line)  # every line is one JSON object
            assert isinstance(record, dict), f"{where}: {line}"
            assert {"ts", "level", "logger", "msg"} <= record.keys(), f"{where}: {line}"
            for needle in forbidden:
                assert needle not in line, f"{where} holds {needle!r}: {line}"
    assert lines > 10  # gunicorn's, rq's and tipline's own lines were all read
