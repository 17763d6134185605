"""The inbound webhook's fast path answers as the Flask view does, and leaves the rest to it."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request_started
from werkzeug.test import Client, TestResponse

from tests.conftest import AUTH_TOKEN, app_for, count, sign, sms_params
from tipline.intake import sms
from tipline.models import Tip

PATH = "/sms/inbound"
STAFF_PHONE = "+15550000111"  # Officer Ruiz in config/example.toml


@pytest.fixture
def flask_runs(twilio_app: Flask) -> Iterator[list[str]]:
    """The paths Flask dispatched itself (its request_started signal); the fast path sends none."""
    seen: list[str] = []

    def record(_sender: Flask, **_extra: Any) -> None:
        from flask import request  # noqa: PLC0415

        seen.append(request.path)

    with request_started.connected_to(record, twilio_app):
        yield seen


def fast(app: Flask) -> Client:
    """A client of the whole app: the fast path in front of Flask."""
    return Client(app.wsgi_app)


def flask_only(app: Flask) -> Client:
    """A client of Flask alone, without the fast path."""
    return Client(app.wsgi_app.wsgi_app)  # type: ignore[attr-defined]


def post(client: Client, params: dict[str, str], **kwargs: Any) -> TestResponse:
    headers = {"X-Twilio-Signature": sign(PATH, params), **kwargs.pop("headers", {})}
    return client.post(PATH, data=params, headers=headers, **kwargs)


def answer(resp: TestResponse) -> tuple[int, list[tuple[str, str]], str]:
    """Status, headers and body, with tip codes and lengths (which differ per tip) masked."""
    body = re.sub(r"T\d{4,}", "T####", resp.get_data(as_text=True))
    headers = [(k, "#" if k == "Content-Length" else v) for k, v in resp.headers.items()]
    return resp.status_code, headers, body


def phone() -> str:
    return f"+1555{uuid.uuid4().int % 10**7:07d}"


@pytest.mark.parametrize(
    ("body", "to", "from_"),
    [
        ("there is a kid with a knife in the gym", "+15550000100", None),
        ("my friend says she wants to kill herself tonight", "+15550000100", None),
        ("alguien trae un arma a la escuela mañana", "+15550000200", None),
        ("STOP", "+15550000100", None),
        ("a fight after school", "+15559999999", None),  # no school has this number: 404
        ("a fight after school", "+15550000100", "12345"),  # a short code, not a phone
        ("ACK 1234", "+15550000100", STAFF_PHONE),
    ],
)
def test_the_fast_path_answers_as_the_flask_view_does(
    twilio_app: Flask, flask_runs: list[str], body: str, to: str, from_: str | None
) -> None:
    by_flask = post(flask_only(twilio_app), sms_params(body, from_=from_ or phone(), to=to))
    assert flask_runs == [PATH]
    by_fast_path = post(fast(twilio_app), sms_params(body, from_=from_ or phone(), to=to))
    assert flask_runs == [PATH]  # Flask was not asked again
    assert answer(by_fast_path) == answer(by_flask)


def test_a_follow_up_and_a_replay_answer_the_same_on_both_paths(
    twilio_app: Flask, flask_runs: list[str]
) -> None:
    sender = phone()
    first = sms_params("someone is selling vapes in the bathroom", from_=sender)
    post(fast(twilio_app), first)
    by_flask = post(flask_only(twilio_app), sms_params("it's in the 2nd floor one", from_=sender))
    by_fast_path = post(fast(twilio_app), sms_params("every day at lunch", from_=sender))
    assert answer(by_fast_path) == answer(by_flask)
    assert "T####" in answer(by_fast_path)[2]
    assert answer(post(fast(twilio_app), first)) == answer(post(flask_only(twilio_app), first))
    assert count(twilio_app, Tip) == 1
    assert flask_runs == [PATH, PATH]  # the follow-up and the replay sent to Flask alone


def _unusual(case: str) -> tuple[str, dict[str, Any]]:
    """A webhook request that is not the common case: its path and the client's arguments."""
    params = sms_params("a fight after school", from_=phone())
    path = PATH + "?school=lincoln" if case == "query string" else PATH
    if case == "no Body field":
        params.pop("Body")
    if case == "over the body limit":
        params["Body"] = "x" * 70_000
    headers = {"X-Twilio-Signature": sign(path, params)}
    if case == "unsigned":
        headers = {}
    if case == "wrong signature":
        headers = {"X-Twilio-Signature": sign(path, params, token=AUTH_TOKEN[::-1])}
    kwargs: dict[str, Any] = {"data": params, "headers": headers}
    if case == "JSON body":
        kwargs = {"json": params, "headers": headers}
    if case == "raw byte not UTF-8":
        form = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in params.items())
        kwargs["data"] = form.encode() + b"\xe9"
        kwargs["content_type"] = "application/x-www-form-urlencoded"
    return path, kwargs


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unsigned", 403),
        ("wrong signature", 403),
        ("no Body field", 400),
        ("query string", 200),
        ("JSON body", 403),
        ("over the body limit", 413),
        ("raw byte not UTF-8", 403),  # werkzeug drops the undecodable form: unsigned
    ],
)
def test_anything_but_the_common_case_is_answered_by_flask(
    twilio_app: Flask, flask_runs: list[str], case: str, status: int
) -> None:
    path, kwargs = _unusual(case)
    assert fast(twilio_app).post(path, **kwargs).status_code == status
    assert flask_runs == [PATH]


def test_an_unsigned_text_is_logged_once_by_the_blueprint(
    twilio_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        resp = fast(twilio_app).post(PATH, data=sms_params("a fight", from_=phone()))
    assert resp.status_code == 403
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["sms.inbound: missing Twilio signature"]


def test_a_failure_while_storing_gets_flasks_500_page_and_log_without_the_text(
    twilio_env: dict[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug in storing")

    monkeypatch.setattr(sms, "receive_and_commit", broken)
    sender, text = phone(), "he has a gun in his locker"
    with app_for(twilio_env) as app, caplog.at_level(logging.INFO):
        app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production
        resp = post(fast(app), sms_params(text, from_=sender))
    assert resp.status_code == 500
    assert resp.headers["Content-Security-Policy"]  # the app's page, with its headers
    assert "Exception on /sms/inbound [POST]" in caplog.text
    assert "a bug in storing" in caplog.text
    for secret in (text, sender, sender[2:]):
        assert secret not in caplog.text
        assert secret not in resp.get_data(as_text=True)


def test_every_hook_flask_runs_for_the_webhook_is_one_the_fast_path_stands_in_for(
    app: Flask,
) -> None:
    """A hook added later (a maintenance switch, a metric) would be skipped by the fast path:
    this fails until the fast path does its part too, or leaves such requests to Flask.

    CSRF: the blueprint is exempt. The signature: `signature_refusal`. The body limit:
    MAX_BODY. The remember-me cookie: no login on a webhook. The security headers: HEADERS.
    The session teardown runs with the app context the fast path pushes.
    """

    def names(hooks: dict[Any, list[Any]]) -> list[str]:
        return [f.__qualname__ for key in (None, "sms") for f in hooks.get(key, [])]

    assert names(app.before_request_funcs) == [
        "CSRFProtect.init_app.<locals>.csrf_protect",
        "guard.<locals>._check_signature",
    ]
    assert names(app.url_value_preprocessors) == ["guard.<locals>._limit_body"]
    assert names(app.after_request_funcs) == [
        "LoginManager._update_remember_cookie",
        "_add_headers",
    ]
    assert names(app.teardown_request_funcs) == []
    assert [f.__qualname__ for f in app.teardown_appcontext_funcs] == [
        "SQLAlchemy._teardown_session"
    ]
