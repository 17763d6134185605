"""A real server, a real `tipline worker` and Debian's Chromium driven by Playwright.

The app of the test fixtures (fake Twilio, its own database and Redis db) is served by
werkzeug in a thread; the worker is a `tipline worker` process on the same database and Redis,
so routing, escalation timers and replies run as in production. Chromium is the system's
(`apt-get install chromium`), launched headless; `playwright install` is never needed.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.support.alerting import use_config
from tests.support.browser import DESKTOP, Live, Worker
from tests.support.policies import policy, step

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# The example district, its critical policy replaced by a short chain that names Officer Ruiz
# (the login the tests sign in as) and then the district: a step that must not fire after an ack.
BROWSER_POLICY = policy(
    "browser",
    step("staff:ruiz", wait="10s"),
    step("role:district", wait="10s"),
    repeat=0,
)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session (each test opens its own contexts)."""
    if CHROMIUM is None:
        pytest.skip("no chromium binary (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield browser
        browser.close()


@pytest.fixture
def live(twilio_app: Flask, twilio_env: dict[str, str], tmp_path: Path) -> Iterator[Live]:
    """The test app on a real port, with a real worker beside it."""
    config = use_config(twilio_app, tmp_path, BROWSER_POLICY)
    env = {**os.environ, **twilio_env, "TIPLINE_CONFIG": str(config)}
    server: BaseWSGIServer = make_server("127.0.0.1", 0, twilio_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    worker = Worker(env, tmp_path / "worker.log")
    try:
        yield Live(twilio_app, f"http://127.0.0.1:{server.server_port}", env)
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def new_page(live: Live, chromium: Any) -> Iterator[Callable[..., Any]]:
    """Pages in browser contexts of their own (one cookie jar each: staff, a student), closed
    before the server stops (an open page keeps a connection, and the server, waiting)."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] = DESKTOP) -> Any:
        context = chromium.new_context(viewport=viewport)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
