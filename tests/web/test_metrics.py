"""`/metrics`: the bearer token when one is set (loopback included), loopback only when unset."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import app_for, post_signed, sms_params

TOKEN = "metrics-token-0123456789"
NAMES = [
    "tipline_sms_inbound_total",
    "tipline_tips",
    "tipline_pages",
    "tipline_deliveries",
    "tipline_escalation_lateness_max_seconds",
    "tipline_escalation_steps_last_hour",
    "tipline_queue_depth",
    "tipline_sweeper_heartbeat_age_seconds",
    "tipline_floods",
]
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def token_app(env: dict[str, str]) -> Iterator[Flask]:
    with app_for({**env, "TIPLINE_METRICS_TOKEN": TOKEN}) as app:
        yield app


@pytest.mark.parametrize(
    ("environ", "headers", "expected"),
    [
        (LOOPBACK, {}, 200),
        ({"REMOTE_ADDR": "::1"}, {}, 200),
        (REMOTE, {}, 403),
        (LOOPBACK, {"X-Forwarded-For": "203.0.113.9"}, 403),  # passed on by a local proxy
        (LOOPBACK, {"Forwarded": "for=203.0.113.9"}, 403),
        (REMOTE, {"Authorization": f"Bearer {TOKEN}"}, 403),  # no token configured
    ],
)
def test_without_a_token_only_loopback_may_scrape(
    app: Flask, environ: dict[str, str], headers: dict[str, str], expected: int
) -> None:
    resp = app.test_client().get("/metrics", environ_base=environ, headers=headers)
    assert resp.status_code == expected


@pytest.mark.parametrize(
    ("environ", "headers", "expected"),
    [
        (REMOTE, {"Authorization": f"Bearer {TOKEN}"}, 200),
        (LOOPBACK, {"Authorization": f"Bearer {TOKEN}"}, 200),
        (LOOPBACK, {}, 401),  # loopback too needs the token once one is set
        (REMOTE, {}, 401),
        (REMOTE, {"Authorization": "Bearer wrong"}, 401),
        (REMOTE, {"Authorization": TOKEN}, 401),
        (REMOTE, {"Authorization": f"Basic {TOKEN}"}, 401),
    ],
)
def test_with_a_token_every_scrape_needs_it(
    token_app: Flask, environ: dict[str, str], headers: dict[str, str], expected: int
) -> None:
    resp = token_app.test_client().get("/metrics", environ_base=environ, headers=headers)
    assert resp.status_code == expected
    if expected == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"tipline_" not in resp.data


def test_metric_names_are_exposed_in_text_format(app: Flask) -> None:
    assert post_signed(app.test_client(), "/sms/inbound", sms_params("fight at lunch")).status_code
    resp = app.test_client().get("/metrics", environ_base=LOOPBACK)
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain")
    text = resp.get_data(as_text=True)
    for name in NAMES:
        assert f"# TYPE {name} " in text, name
    assert re.search(r'^tipline_tips\{status="[a-z_]+"\} 1\.0$', text, re.M)
    assert re.search(r'^tipline_sms_inbound_total\{kind="[a-z_]+"\} [1-9]', text, re.M)
    assert 'tipline_queue_depth{queue="alerts"}' in text
    assert "fight at lunch" not in text
    assert "+1555" not in text
