"""`tipline dev` on a machine with nothing set up: everything embedded, and nothing left after.

Runs the real command in a folder of its own, with no TIPLINE_ or TWILIO_ variable, as the
README's first command does on a fresh clone.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support.wait import wait_for

STUDENT = "+15557770123"
TIP = "he has a gun in his backpack and says he will use it tomorrow"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _running_in(folder: Path) -> list[int]:
    """Processes whose working directory is `folder` or inside it (the dev children chdir
    nowhere else; redis-server runs in instance/)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == str(folder) or cwd.startswith(f"{folder}/"):
            found.append(int(entry))
    return found


class _Output:
    """The dev process's output, read as it comes, so its pipe never fills up."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def close(self, proc: subprocess.Popen[str]) -> None:
        self._thread.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback only
        return resp.status, resp.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _sign_in(base: str, email: str, password: str) -> str:
    """Post the admin login form as a browser would; where the answer sends it."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    with opener.open(f"{base}/admin/login", timeout=10) as resp:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', resp.read().decode())
    assert token is not None
    form = {"email": email, "password": password, "csrf_token": token.group(1)}
    try:
        opener.open(f"{base}/admin/login", data=urllib.parse.urlencode(form).encode(), timeout=10)
    except urllib.error.HTTPError as e:
        return str(e.headers["Location"])
    raise AssertionError("the login form did not redirect")


def _answers(url: str, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, "tipline dev exited early"
    try:
        _get(url)
    except OSError:
        return False
    return True


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell's `tipline dev &` starts with


@pytest.mark.parametrize("stop", ["ctrl-c", "ctrl-c, started in the background", "sigterm"])
def test_dev_runs_everything_embedded_and_stopping_it_leaves_nothing_running(
    tmp_path: Path, stop: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIPLINE_", "TWILIO_"))}
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tipline", "dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a group of its own, as a terminal gives it
        preexec_fn=_ignore_sigint if "background" in stop else None,  # noqa: PLW1509
    )
    out = _Output(proc)
    try:
        wait_for(lambda: _answers(f"{base}/livez", proc), 90, "tipline dev to answer")
        login = out.wait_for(r"^demo admin: (\S+@\S+) password: (\S+)$")
        assert login.group(1) == "admin@example.org"
        # Dev mode only: the printed demo login signs in with its password alone.
        assert _sign_in(base, login.group(1), login.group(2)) == "/admin/"

        status, page = _get(f"{base}/tip/lincoln")
        assert status == 200
        assert "<form" in page

        form = {"From": STUDENT, "To": "+15550000100", "Body": TIP, "MessageSid": "SM" + "d" * 32}
        req = urllib.request.Request(  # noqa: S310 - loopback only
            f"{base}/sms/inbound", data=urllib.parse.urlencode(form).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            code = re.search(r"Your tip code is (T\d+)", resp.read().decode())
        assert code is not None

        # The worker routes it; the console outbox prints one line per SMS, never the text
        # or the student's number.
        alert = out.wait_for(rf"\[sms → .*\] CRITICAL weapon {code.group(1)} ")
        assert STUDENT not in alert.string
        assert "gun" not in alert.string
        assert (tmp_path / "instance").is_dir()
        assert _running_in(tmp_path), "the children and redis-server run in this folder"
    finally:
        if stop.startswith("ctrl-c"):
            os.killpg(proc.pid, signal.SIGINT)  # the group this test created, by its id
        else:
            proc.terminate()
        try:
            returncode = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            out.close(proc)
    assert returncode == 0, "\n".join(out.lines)
    out.wait_for(r"^tipline dev: stopped$", timeout=5)
    wait_for(lambda: _running_in(tmp_path) == [], 10, "every process in the folder to end")
    assert all(STUDENT not in line and TIP not in line for line in out.lines)
