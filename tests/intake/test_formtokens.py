"""The web tip form: each rendering posts once, and one browser session has a budget of tips.

The attack: fetch the form once and post it again and again (Flask-WTF's CSRF token lasts
the whole browser session), or keep posting from one session. A real student's way through
the form, mistakes included, must not notice any of it, and it still needs no JavaScript.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.web import Page, form_tokens, post_tip, tip_count
from tipline.intake import formtokens
from tipline.platform.services import services
from tipline.web.report import views

URL = "/tip/lincoln"


def post(client: FlaskClient, data: dict[str, Any], url: str = URL) -> Any:
    return client.post(url, data=data)


def test_a_replayed_post_is_refused_and_stores_nothing(app: Flask, client: FlaskClient) -> None:
    data = {**form_tokens(client, URL), "text": "there will be a fight at the bus loop"}
    first = post(client, data)
    assert first.status_code == 200
    assert Page(first.get_data(as_text=True)).text("receipt-code")
    for _ in range(3):
        again = post(client, data)
        body = again.get_data(as_text=True)
        assert again.status_code == 400
        assert "This form was already sent" in body
        assert "Nothing was saved" in body
        assert "receipt-code" not in Page(body).by_id
        assert "bus loop" not in body  # what was posted is not shown back
        assert 'href="/tip/lincoln?lang=en"' in body  # a way on without JavaScript
    assert tip_count(app) == 1


def test_the_refusal_is_in_the_forms_language(app: Flask, client: FlaskClient) -> None:
    url = "/tip/washington?lang=es"
    data = {**form_tokens(client, url), "text": "hay una pelea en el gimnasio"}
    assert post(client, data, url).status_code == 200
    again = post(client, data, url)
    assert again.status_code == 400
    page = Page(again.get_data(as_text=True))
    assert next(a for tag, a in page.tags if tag == "html")["lang"] == "es"
    assert "Este formulario ya se envió" in page.html
    assert "llama al 911" in page.html  # the danger notice stays on every page
    assert tip_count(app) == 1


@pytest.mark.parametrize("how", ["missing", "forged", "other school", "other session"])
def test_a_form_token_not_made_for_this_post_is_refused(
    app: Flask, client: FlaskClient, how: str
) -> None:
    tokens = form_tokens(client, URL)
    if how == "missing":
        del tokens["form_token"]
    elif how == "forged":
        tokens["form_token"] = formtokens.issue("not-the-secret", "lincoln", "x")
    elif how == "other school":
        tokens["form_token"] = form_tokens(client, "/tip/washington")["form_token"]
    else:
        tokens["form_token"] = form_tokens(app.test_client(), URL)["form_token"]
    resp = post(client, {**tokens, "text": "someone keyed my car"})
    assert resp.status_code == 400
    assert "The form could not be sent" in resp.get_data(as_text=True)
    assert tip_count(app) == 0


def test_a_student_who_makes_a_mistake_and_sends_two_tips_is_never_refused(
    app: Flask, client: FlaskClient
) -> None:
    page = Page(post(client, {**form_tokens(client, URL), "text": "  "}).get_data(as_text=True))
    assert "Write your tip" in page.text("text-error")  # the form again, with a new token
    resp = post(
        client,
        {
            "csrf_token": page.value("csrf_token"),
            "form_token": page.value("form_token"),
            "text": "a kid is selling vapes in the east bathroom",
        },
    )
    assert resp.status_code == 200
    assert Page(resp.get_data(as_text=True)).text("receipt-code")
    assert post_tip(client, "and someone brought a knife to the band room").status_code == 200
    assert tip_count(app) == 2


def test_one_session_has_a_budget_of_tips_others_do_not_share(
    app: Flask, client: FlaskClient
) -> None:
    app.config[views.BUDGET_CONFIG] = formtokens.Budget(tips=3, window_s=3600)
    for n in range(3):
        assert post_tip(client, f"tip number {n} about the bus loop").status_code == 200
    over = post_tip(client, "one more from the same browser")
    assert over.status_code == 429
    assert "Too many tips from this browser" in over.get_data(as_text=True)
    assert tip_count(app) == 3
    assert post_tip(app.test_client(), "a student on another phone").status_code == 200
    assert tip_count(app) == 4
    # Redis holds hashes only: neither the session's id nor a token.
    for key in services(app).redis.scan_iter("tipline:tipform:*"):
        assert len(key.rsplit(b":", 1)[1]) == 64


def test_without_redis_a_tip_is_still_accepted(dead_redis_app: Flask) -> None:
    client = dead_redis_app.test_client()
    assert post_tip(client, "he has a gun in his backpack right now").status_code == 200
    assert tip_count(dead_redis_app) == 1
