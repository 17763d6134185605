"""MMS media: recorded by the webhook, fetched by the worker from Twilio only, sealed at rest."""

from __future__ import annotations

import base64
import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, sms_params
from tests.support.fakes import FakeTwilio, start_fake_twilio
from tests.support.media import (
    MEDIA_PATH,
    PNG,
    attachment,
    fetch,
    pixels,
    run_worker,
    send_mms,
)
from tipline.db import utcnow
from tipline.extensions import db
from tipline.intake import media
from tipline.models import Attachment
from tipline.outbox import notifier
from tipline.platform.services import MEDIA_QUEUE, Services, services


@pytest.fixture
def elsewhere() -> Iterator[FakeTwilio]:
    """A server that is not Twilio: it records any request that reaches it."""
    fake = start_fake_twilio()
    yield fake
    fake.stop()


def test_webhook_only_records_a_pending_sealed_attachment_and_queues_the_fetch(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    url = fake_twilio.url + MEDIA_PATH
    att_id = send_mms(twilio_app, url)
    assert fake_twilio.requests == []  # the webhook itself never calls out
    att, content = attachment(twilio_app, att_id)
    assert (att.status, content) == ("pending", None)
    assert att._source is not None
    assert url.encode() not in att._source
    assert f"media-{att_id}" in services(twilio_app).queue(MEDIA_QUEUE).get_job_ids()


def test_mms_attachment_is_stored_sealed_after_the_worker_runs(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media[MEDIA_PATH] = (PNG, "image/png")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    run_worker(twilio_app)
    att, content = attachment(twilio_app, att_id)
    assert content is not None
    assert (att.status, att.content_type, att.size) == ("stored", "image/png", len(content))
    assert pixels(content) == pixels(PNG)  # re-encoded without metadata, the same picture
    assert att._content is not None
    assert content[16:80] not in att._content  # sealed, not stored as fetched
    [get] = [r for r in fake_twilio.requests if r.method == "GET"]
    assert get.path == MEDIA_PATH
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert get.headers["Authorization"] == f"Basic {expected}"


def test_fetching_again_changes_nothing(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    fake_twilio.media[MEDIA_PATH] = (PNG, "image/png")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id) == "stored"
    assert fetch(twilio_app, att_id) == "stored"
    assert [r.method for r in fake_twilio.requests] == ["GET", "DELETE"]
    assert fetch(twilio_app, "no-such-attachment") == "missing"


@pytest.mark.parametrize(
    "url",
    [
        "{elsewhere}" + MEDIA_PATH,
        "http://169.254.169.254/latest/meta-data/iam/",
        "file:///etc/passwd",
        "{twilio_host}.evil.test" + MEDIA_PATH,
        "http://user:pass@{twilio_hostport}" + MEDIA_PATH,
        "not a url",
    ],
)
def test_media_url_outside_the_twilio_origin_is_never_fetched(
    twilio_app: Flask, fake_twilio: FakeTwilio, elsewhere: FakeTwilio, url: str
) -> None:
    elsewhere.media[MEDIA_PATH] = (PNG, "image/png")
    hostport = fake_twilio.url.removeprefix("http://")
    url = url.format(elsewhere=elsewhere.url, twilio_host=fake_twilio.url, twilio_hostport=hostport)
    att_id = send_mms(twilio_app, url)
    run_worker(twilio_app)
    assert elsewhere.requests == []
    assert [r for r in fake_twilio.requests if r.method == "GET"] == []
    att, content = attachment(twilio_app, att_id)
    assert (att.status, content) == ("rejected", None)


@pytest.mark.parametrize(
    ("data", "served_as"),
    [
        (
            b"MZ\x90\x00" + b"\x00" * 100,
            "image/jpeg",
        ),  # a Windows executable calling itself a photo
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, "video/mp4"),
        (b"<html><script>alert(1)</script>", "image/png"),
    ],
)
def test_media_that_is_not_an_image_or_pdf_is_rejected(
    twilio_app: Flask, fake_twilio: FakeTwilio, data: bytes, served_as: str
) -> None:
    fake_twilio.media[MEDIA_PATH] = (data, served_as)
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH, content_type=served_as)
    assert fetch(twilio_app, att_id) == "rejected"
    assert attachment(twilio_app, att_id)[1] is None


def test_media_over_5_mb_is_rejected(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    fake_twilio.media[MEDIA_PATH] = (PNG + b"\x00" * (5 * 1024 * 1024), "image/png")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id) == "rejected"


def test_console_mode_leaves_media_unavailable(app: Flask) -> None:
    params = sms_params(
        "picture of the fight",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com" + MEDIA_PATH,
        MediaContentType0="image/png",
    )
    assert app.test_client().post("/sms/inbound", data=params).status_code == 200
    with app.app_context():
        att_id = db.session.scalars(select(Attachment.id)).one()
    assert fetch(app, att_id) == "unavailable"
    assert fetch(app, att_id) == "unavailable"


def test_twilio_refusing_the_media_fails_it(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    fake_twilio.failures = [404]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id) == "failed"


def test_twilio_trouble_is_retried_then_given_up_after_a_day(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.failures = [503, 503]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id) == "pending"
    assert fetch(twilio_app, att_id, now=utcnow() + timedelta(hours=25)) == "failed"


def test_a_follow_up_mms_attaches_to_its_message(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    first = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    second = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH, body="and another one")
    one, _ = attachment(twilio_app, first)
    two, _ = attachment(twilio_app, second)
    assert one.tip_id == two.tip_id
    assert one.message_id is None
    assert two.message_id is not None


# -- redirects: Twilio sends media GETs on to its CDN --------------------------------------------


class Redirector:
    """A stand-in for Twilio's API that answers media GETs with a redirect."""

    def __init__(self) -> None:
        self.location = ""
        self.hits: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append({"path": self.path, **dict(self.headers.items())})
                if self.path == "/final":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(PNG)))
                    self.end_headers()
                    self.wfile.write(PNG)
                    return
                self.send_response(307)
                self.send_header("Location", owner.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def redirector() -> Iterator[Redirector]:
    server = Redirector()
    yield server
    server.stop()


def pointed_at(app: Flask, base: str) -> Services:
    """The app's services, but with Twilio's API at `base`."""
    settings = dataclasses.replace(services(app).settings, twilio_api_base_url=base)
    return Services(settings)


def test_a_redirect_within_the_twilio_origin_is_followed_with_credentials(
    twilio_app: Flask, redirector: Redirector
) -> None:
    redirector.location = "/final"
    att_id = send_mms(twilio_app, redirector.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id, pointed_at(twilio_app, redirector.url)) == "stored"
    assert [h["path"] for h in redirector.hits] == [MEDIA_PATH, "/final"]
    assert all(h.get("Authorization", "").startswith("Basic ") for h in redirector.hits)


@pytest.mark.parametrize(
    "location",
    ["{elsewhere}/final", "https://127.0.0.1/final", "https://localhost/x", "https://[::1]/x"],
)
def test_a_redirect_to_a_private_or_plain_http_address_is_not_followed(
    twilio_app: Flask, redirector: Redirector, elsewhere: FakeTwilio, location: str
) -> None:
    redirector.location = location.format(elsewhere=elsewhere.url)
    att_id = send_mms(twilio_app, redirector.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id, pointed_at(twilio_app, redirector.url)) == "rejected"
    assert elsewhere.requests == []
    assert len(redirector.hits) == 1


def test_endless_redirects_give_up(twilio_app: Flask, redirector: Redirector) -> None:
    redirector.location = MEDIA_PATH
    att_id = send_mms(twilio_app, redirector.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id, pointed_at(twilio_app, redirector.url)) == "failed"
    assert len(redirector.hits) == notifier.MAX_REDIRECTS + 1


# -- pure checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),
        (PNG, "image/png"),
        (b"GIF89a" + b"\x00" * 20, "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image/webp"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20, "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1" + b"\x00" * 20, "image/heic"),
        (b"%PDF-1.7\n" + b"\x00" * 20, "application/pdf"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 20, None),
        (b"", None),
    ],
)
def test_sniff_knows_the_accepted_types_by_their_bytes(data: bytes, expected: str | None) -> None:
    assert media.sniff(data) == expected


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://api.twilio.com/2010-04-01/x", True),
        ("https://API.twilio.com:443/x", True),
        ("http://api.twilio.com/x", False),
        ("https://api.twilio.com:8443/x", False),
        ("https://api.twilio.com.evil.test/x", False),
        ("https://evil.test/?https://api.twilio.com", False),
        ("https://user@api.twilio.com/x", False),
        ("//api.twilio.com/x", False),
        ("https://api.twilio.com:99999/x", False),
    ],
)
def test_same_origin_is_strict(url: str, same: bool) -> None:
    assert notifier.same_origin(url, "https://api.twilio.com") is same
