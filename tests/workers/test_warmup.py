"""The worker pays its cold start before it takes jobs, not on the first page."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from tipline.cli.assemble import build_app
from tipline.extensions import dbsession
from tipline.platform.services import services
from tipline.triage.learned import default_model
from workers import jobs
from workers.runner import warm_up

NO_DATABASE = "postgresql://tipline@127.0.0.1:9/tipline"  # nothing listens on port 9


def test_warm_up_compiles_the_rules_loads_the_model_and_builds_the_twilio_client(
    app: Flask,
) -> None:
    svc = services(app)
    svc.forget_rules()
    default_model.cache_clear()
    app.extensions.pop(jobs.NOTIFIER, None)
    warm_up(app)
    assert default_model.cache_info().currsize == 1  # the first route job does not load it
    assert jobs.NOTIFIER in app.extensions
    with app.app_context():
        before = svc.rules(dbsession())
    warm_up(app)  # a second warm-up reuses what the first compiled
    with app.app_context():
        assert svc.rules(dbsession()) is before


def test_warm_up_without_a_database_still_lets_the_worker_start(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="workers.runner"):
        app = build_app({**env, "TIPLINE_DATABASE_URL": NO_DATABASE}, TESTING=True)
        warm_up(app)
        assert jobs.NOTIFIER in app.extensions
    assert "warm-up skipped the database" in caplog.text
