"""Browser tests' helpers: the live server's handle, a worker process, and what a person does
in the browser (sign in, send a tip, read replies), and what the tests watch on a page."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from tests.support.admin import PASSWORD, TOTP_SECRET, current_code, forget_last_code

RUIZ_EMAIL = "dana.ruiz@example.org"
PHONE = {"width": 390, "height": 844}  # a common phone's CSS pixels
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class Live:
    """The test app as a browser reaches it (`url`), and the environment its worker runs in."""

    app: Flask
    url: str
    env: dict[str, str]


class Worker:
    """One `tipline worker` process in a process group of its own (its rq scheduler child too)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tipline", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """Killed with its group: the database and Redis are emptied before the next test, and
        a warm shutdown would wait on rq's scheduler for seconds."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this fixture created
        self.proc.wait(timeout=10)


def sign_in(live: Live, page: Any, email: str = RUIZ_EMAIL, secret: str = TOTP_SECRET) -> None:
    """Password, then the authenticator's current code, through the real forms."""
    page.goto(live.url + "/admin/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/login/totp")
    forget_last_code(live.app, email)  # each code signs in once; tests sign in more often
    page.fill("#code", current_code(secret))
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")


def send_tip(live: Live, page: Any, text: str, school: str = "lincoln") -> tuple[str, str]:
    """A student's tip through the web form; the receipt code and passphrase it shows."""
    page.goto(f"{live.url}/tip/{school}")
    page.fill("#text", text)
    page.click("main button[type=submit]")
    code = page.inner_text("#receipt-code").strip()
    passphrase = page.inner_text("#receipt-passphrase").strip()
    return code, passphrase


def open_followup(live: Live, page: Any, code: str, passphrase: str) -> None:
    page.goto(live.url + "/followup")
    page.fill("#code", code)
    page.fill("#passphrase", passphrase)
    page.click("main button[type=submit]")


@dataclass
class Listener:
    """Every dialog, console message and uncaught error a page produced: a hostile tip that
    ran would open a dialog, and one the CSP blocked would leave a console error."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return page

    def _console(self, msg: Any) -> None:
        # The browser asks every site for /favicon.ico on its own; the app has none (a 404).
        if not str(msg.location.get("url", "")).endswith("/favicon.ico"):
            self.console.append(f"{msg.type}: {msg.text}")

    def quiet(self) -> bool:
        return not (self.dialogs or self.console or self.errors)


def scroll_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def fits(page: Any, what: str) -> None:
    """The page does not scroll sideways at the phone's width."""
    width = scroll_width(page)
    assert width <= PHONE["width"], f"{what} is {width} px wide at {PHONE['width']} px"
