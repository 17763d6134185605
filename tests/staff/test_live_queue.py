"""The live queue: the queue page's own script polls its rows with an ETag; a tip the login may
not view neither shows nor moves the tag; a new critical tip is unmissable; the poll does not
keep a session alive."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tests.support.admin import AuthActions, make_tip
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import StaffSession
from tipline.staff import sessions

LIVE = "/admin/queue/live"
WEAPON = "a kid said he is bringing a gun to school tomorrow, he showed it in the parking lot"
BULLYING = "some older kids keep pushing my friend in the hallway and calling him names"
VAPING = "people are vaping in the upstairs bathroom every lunch"
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)


def poll(auth: AuthActions, etag: str | None = None, query: str = "") -> TestResponse:
    headers = {"If-None-Match": etag} if etag else {}
    return auth.client.get(LIVE + query, headers=headers)


def csp_directives(response: TestResponse) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        found[name] = values
    return found


def test_poll_returns_a_new_tip_once_it_is_stored(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    first = poll(auth)
    assert first.status_code == 200
    assert first.mimetype == "text/html"
    assert first.headers["Cache-Control"] == "no-store"
    etag = first.headers["ETag"]
    tip_id = make_tip(app, BULLYING)
    second = poll(auth, etag)
    assert second.status_code == 200
    assert f"/admin/tips/{tip_id}" in second.get_data(as_text=True)
    assert second.headers["ETag"] != etag


def test_nothing_changed_is_a_304_with_the_same_etag(app: Flask, auth: AuthActions) -> None:
    make_tip(app, BULLYING)
    auth.login_as("sro")
    first = poll(auth, query="?status=all")
    again = poll(auth, first.headers["ETag"], query="?status=all")
    assert again.status_code == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.data == b""
    # The page itself carries the same tag, so its script's first poll is a 304 too.
    page = auth.client.get("/admin/?status=all").get_data(as_text=True)
    assert f'data-etag="{first.headers["ETag"].strip(chr(34))}"' in page


@pytest.mark.parametrize(
    ("who", "text", "school"),
    [
        ("sro", VAPING, "washington"),  # another school
        ("admin", WEAPON, "washington"),
        ("counselor", BULLYING, "washington"),
        # A critical weapon tip routes by "life-safety", which pages no counselor (access.md).
        ("counselor", WEAPON, "lincoln"),
    ],
)
def test_a_tip_the_login_may_not_view_neither_shows_nor_moves_the_etag(
    app: Flask, auth: AuthActions, who: str, text: str, school: str
) -> None:
    auth.login_as(who)
    before = poll(auth, query="?status=all")
    hidden = make_tip(app, text, school)
    after = poll(auth, before.headers["ETag"], query="?status=all")
    assert after.status_code == 304
    assert after.headers["ETag"] == before.headers["ETag"]
    assert hidden not in poll(auth, query="?status=all").get_data(as_text=True)
    assert hidden not in auth.client.get("/admin/?status=all").get_data(as_text=True)
    # Not vacuous: a tip this login does see moves the tag at once.
    seen = make_tip(app, BULLYING)  # at Lincoln, where every one of these logins works
    moved = poll(auth, before.headers["ETag"], query="?status=all")
    assert moved.status_code == 200
    assert seen in moved.get_data(as_text=True)


def test_a_new_critical_tip_raises_the_banner_and_the_title_count(
    app: Flask, auth: AuthActions
) -> None:
    make_tip(app, BULLYING)
    auth.login_as("sro")
    quiet = auth.client.get("/admin/").get_data(as_text=True)
    assert "<title>Queue · tipline staff</title>" in quiet
    assert "critical-banner" not in quiet
    first = make_tip(app, WEAPON)
    make_tip(app, WEAPON, "washington")  # not this login's school: not counted
    fragment = poll(auth).get_data(as_text=True)
    assert 'data-critical="1"' in fragment
    assert f'data-critical-ids="{first}"' in fragment
    assert 'class="critical-banner" role="alert"' in fragment
    assert "1 new critical tip</strong>" in fragment
    make_tip(app, WEAPON)
    page = auth.client.get("/admin/?severity=low").get_data(as_text=True)
    assert "<title>(2) Queue · tipline staff</title>" in page  # whatever the filters show
    assert "2 new critical tips</strong>" in page


def test_the_queue_page_loads_its_script_from_this_origin(auth: AuthActions) -> None:
    auth.login_as("sro")
    body = auth.client.get("/admin/").get_data(as_text=True)
    [(attrs, inline)] = SCRIPT_TAG.findall(body)
    assert inline.strip() == ""  # no inline script
    assert not re.search(r"\son[a-z]+\s*=", body, re.I)  # no inline event handlers
    src = re.search(r'\ssrc="([^"]+)"', attrs)
    assert src is not None
    url = html.unescape(src.group(1))
    assert url.startswith("/static/")
    assert not url.startswith("//")
    script = auth.client.get(url)
    assert script.status_code == 200
    assert script.mimetype in ("text/javascript", "application/javascript")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    text = script.get_data(as_text=True)
    script.close()
    assert "If-None-Match" in text
    assert "AudioContext" in text  # the beep is made here: no audio file
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|eval\(|new Function", text)


def test_only_the_queue_page_may_run_a_script_and_never_inline(
    auth: AuthActions, client: FlaskClient
) -> None:
    auth.login_as("sro")
    queue = csp_directives(auth.client.get("/admin/"))
    assert queue["script-src"] == ["'self'"]
    assert queue["connect-src"] == ["'self'"]
    assert queue["default-src"] == ["'none'"]
    assert queue["frame-ancestors"] == ["'none'"]
    for page in (auth.client.get("/admin/"), auth.client.get(LIVE)):
        assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
        assert "unsafe-eval" not in page.headers["Content-Security-Policy"]
    assert csp_directives(auth.client.get("/admin/dashboard"))["script-src"] == ["'none'"]
    assert csp_directives(client.get("/tip/lincoln"))["script-src"] == ["'none'"]


def test_without_javascript_a_refresh_link_keeps_the_filters(auth: AuthActions) -> None:
    auth.login_as("sro")
    body = auth.client.get("/admin/?status=all&severity=critical").get_data(as_text=True)
    link = re.search(r'<a id="queue-refresh" href="([^"]+)"[^>]*>Refresh</a>', body)
    assert link is not None
    assert html.unescape(link.group(1)) == "/admin/?status=all&severity=critical"
    live = re.search(r'data-live-url="([^"]+)"', body)
    assert live is not None
    assert html.unescape(live.group(1)) == f"{LIVE}?status=all&severity=critical"
    # The sound button only shows when the script can make a sound; it never starts on its own.
    assert re.search(r'<button type="button" id="queue-sound" aria-pressed="false" hidden>', body)


def _shift_seen(app: Flask, ago: timedelta) -> datetime:
    with app.app_context():
        [row] = dbsession().scalars(select(StaffSession)).all()
        row.last_seen_at = utcnow() - ago
        db.session.commit()
        return row.last_seen_at


def _last_seen(app: Flask) -> datetime:
    with app.app_context():
        [row] = dbsession().scalars(select(StaffSession)).all()
        return row.last_seen_at


def test_a_poll_does_not_extend_the_idle_timeout(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    seen = _shift_seen(app, timedelta(minutes=29))
    etag = poll(auth).headers["ETag"]
    assert poll(auth, etag).status_code == 304
    assert _last_seen(app).replace(tzinfo=None) == seen.replace(tzinfo=None)
    _shift_seen(app, sessions.IDLE + timedelta(seconds=5))
    ended = poll(auth, etag)
    assert ended.status_code == 401  # a bare 401, not a redirect the script could not show
    assert ended.data == b""
    assert auth.client.get("/admin/").status_code == 302


def test_a_page_view_still_counts_as_activity(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    _shift_seen(app, timedelta(minutes=29))
    assert auth.client.get("/admin/").status_code == 200
    last = _last_seen(app).replace(tzinfo=None)
    assert utcnow().replace(tzinfo=None) - last < timedelta(minutes=1)


def test_poll_without_a_session_is_a_bare_401(client: FlaskClient) -> None:
    response = client.get(LIVE)
    assert response.status_code == 401
    assert "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
