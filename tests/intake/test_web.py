"""Web intake: the tip form over real HTTP without JavaScript, receipts, attachments, pages."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.support.web import (
    Page,
    dump_tables,
    form_tokens,
    post_tip,
    stored_anywhere,
    submit_tip,
    tiny_png,
    tip_count,
)
from tipline.cli.assemble import build_app
from tipline.extensions import db, dbsession
from tipline.intake import receipts, web
from tipline.intake.web import keyed_passphrase
from tipline.models import Attachment, Tip, Tipster
from tipline.platform.services import services
from tipline.web.headers import CSP

STATIC = Path(__file__).resolve().parents[2] / "tipline" / "static"


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app behind a real HTTP server on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- the whole path over HTTP ---------------------------------------------------------------


def test_web_tip_over_real_http_without_javascript(
    app: Flask, live_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    text = f"Someone is selling vapes in the east bathroom {uuid.uuid4().hex[:8]}"
    with requests.Session() as browser:
        form = browser.get(f"{live_server}/tip/lincoln", timeout=10)
        assert form.status_code == 200
        assert "<script" not in form.text
        assert form.headers["Content-Security-Policy"] == CSP
        page = Page(form.text)
        resp = browser.post(
            f"{live_server}/tip/lincoln",
            data={
                "csrf_token": page.value("csrf_token"),
                "form_token": page.value("form_token"),
                "text": text,
            },
            files={"attachment": ("", b"", "application/octet-stream")},  # nothing chosen
            timeout=10,
        )
        assert resp.status_code == 200
        assert resp.headers["Cache-Control"] == "no-store"
        receipt = Page(resp.text)
        code, passphrase = receipt.text("receipt-code"), receipt.text("receipt-passphrase")
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code)
        assert len(passphrase.split()) == receipts.PASSPHRASE_WORDS

        with app.app_context():
            tip = db.session.scalars(select(Tip)).one()
            assert services(app).vault.get_text(tip, "body") == text
            assert tip.source == "web"
            assert tip.needs_routing or tip.routed_at is not None
            tipster = tip.tipster
            assert tipster is not None
            normal = receipts.normalize_code(code)
            assert normal is not None
            hashed = services(app).vault.lookup_hash(dbsession(), "receipt", normal)
            assert tipster.receipt_hash == hashed
            # The passphrase only as a keyed hash, salted by the receipt: never in the clear.
            assert tipster.passphrase_hash == keyed_passphrase(
                dbsession(), services(app).vault, hashed, passphrase
            )
            assert passphrase not in tipster.passphrase_hash

        login = Page(browser.get(f"{live_server}/followup", timeout=10).text)
        resp = browser.post(
            f"{live_server}/followup",
            data={"csrf_token": login.value("csrf_token"), "code": code, "passphrase": passphrase},
            timeout=10,
        )
        assert resp.status_code == 200
        assert text in resp.text
        assert "<script" not in resp.text

    # No IP address in any server-side log line (urllib3 is the client), nor in the database.
    server_logs = [r for r in caplog.records if not r.name.startswith("urllib3")]
    assert server_logs is not None
    assert not [r for r in server_logs if "127.0.0.1" in r.getMessage()]
    assert not stored_anywhere(dump_tables(app), "127.0.0.1")


def test_post_without_csrf_token_is_rejected_and_stores_nothing(
    app: Flask, client: FlaskClient
) -> None:
    client.get("/tip/lincoln")
    resp = client.post("/tip/lincoln", data={"text": "there is a fight after school"})
    assert resp.status_code == 400
    assert "text/html" in resp.content_type
    assert "there is a fight" not in resp.get_data(as_text=True)
    assert tip_count(app) == 0


def test_https_post_without_referer_is_accepted(app: Flask) -> None:
    """Referrer-Policy: no-referrer means browsers send none; CSRF must not demand one."""
    client = app.test_client()
    url = "https://tipline.test/tip/lincoln"
    resp = client.post(url, data={**form_tokens(client, url), "text": "someone keyed my car"})
    assert resp.status_code == 200
    assert tip_count(app) == 1


def test_empty_text_shows_the_form_again_with_an_error_tied_to_the_field(
    app: Flask, client: FlaskClient
) -> None:
    resp = post_tip(client, "   \n  ")
    assert resp.status_code == 200
    page = Page(resp.get_data(as_text=True))
    assert page.attrs("text")["aria-invalid"] == "true"
    assert page.attrs("text")["aria-describedby"] == "text-hint text-error"
    assert "Write your tip" in page.text("text-error")
    assert page.text("error-summary-title")
    assert "receipt-code" not in page.by_id
    assert tip_count(app) == 0


def test_form_is_labelled_grouped_and_in_the_right_language(client: FlaskClient) -> None:
    page = Page(client.get("/tip/lincoln").get_data(as_text=True))
    html_tag = next(a for tag, a in page.tags if tag == "html")
    assert html_tag["lang"] == "en"
    labelled = {a.get("for") for tag, a in page.tags if tag == "label"}
    for field in page.inputs:
        if field.get("type") != "hidden":
            assert field["id"] in labelled
            assert field.get("aria-describedby")
    assert any(tag == "fieldset" for tag, _ in page.tags)
    assert page.text("main")
    assert "call 911" in page.html
    assert "Mon-Fri 07:00-16:00" in page.html  # when the school's line is monitored


def test_spanish_page_via_lang_param(app: Flask, client: FlaskClient) -> None:
    page = Page(client.get("/tip/washington?lang=es").get_data(as_text=True))
    html_tag = next(a for tag, a in page.tags if tag == "html")
    assert html_tag["lang"] == "es"
    assert "llama al 911" in page.html
    assert "Enviar aviso" in page.html
    assert "Mon-Fri 07:30-15:30" in page.html
    form = next(a for tag, a in page.tags if tag == "form")
    assert form["action"] == "/tip/washington?lang=es"  # the choice survives the POST
    switch = next(a for tag, a in page.tags if tag == "a" and a.get("hreflang") == "en")
    assert switch["href"] == "/tip/washington?lang=en"

    resp = post_tip(client, "hay una pelea en el gimnasio", school="washington", query="?lang=es")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "Código de recibo" in body
    with app.app_context():
        tipster = db.session.scalars(select(Tipster)).one()
        assert tipster.language == "es"


def test_unknown_school_is_a_friendly_404(client: FlaskClient) -> None:
    resp = client.get("/tip/no-such-school")
    assert resp.status_code == 404
    body = resp.get_data(as_text=True)
    assert "text/html" in resp.content_type
    assert "check the link your school gave you" in body
    assert "call 911" in body
    assert client.post("/tip/no-such-school", data={"text": "x"}).status_code in (400, 404)


# -- attachments ----------------------------------------------------------------------------


def test_attachment_is_sniffed_and_sealed_under_its_own_key(
    app: Flask, client: FlaskClient
) -> None:
    png = tiny_png()
    resp = post_tip(client, "photo of the threat", attachment=(png, "proof.jpg", "image/jpeg"))
    assert resp.status_code == 200
    with app.app_context():
        tip = db.session.scalars(select(Tip)).one()
        att = db.session.scalars(select(Attachment)).one()
        assert att.tip_id == tip.id
        assert att.status == "checking"  # sealed as it came; the sandbox cleans it later
        assert att.content_type == "image/png"  # what the bytes are, not what was declared
        assert att.size == len(png)
        assert att.data_key_id is not None
        assert att.data_key_id != tip.data_key_id
        assert att._content is not None
        assert png not in att._content
        assert services(app).vault.get_bytes(att, "content") == png


@pytest.mark.parametrize(
    ("content", "name", "declared"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200, "cute-cat.png", "image/png"),
        (b"<html><body>hi</body></html>", "page.gif", "image/gif"),
        (b"", "empty.pdf", "application/pdf"),
    ],
    ids=["exe-renamed-png", "html-renamed-gif", "empty-file"],
)
def test_attachment_of_another_type_is_rejected(
    app: Flask, client: FlaskClient, content: bytes, name: str, declared: str
) -> None:
    resp = post_tip(client, "see attached", attachment=(content, name, declared))
    assert resp.status_code == 200
    page = Page(resp.get_data(as_text=True))
    assert "JPEG, PNG, GIF, WebP or HEIC" in page.text("attachment-error")
    assert page.attrs("attachment")["aria-describedby"] == "attachment-hint attachment-error"
    assert tip_count(app) == 0


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x00\x00\x00\x18ftypheic", "image/heic"),
        (b"\x00\x00\x00\x18ftypmp42", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"PK\x03\x04", None),
        (b"\x7fELF", None),
        (b"<svg xmlns='x'/>", None),
    ],
)
def test_sniff_accepts_only_images_and_pdf(head: bytes, expected: str | None) -> None:
    assert web.sniff(head + b"\x00" * 32) == expected


def test_file_over_5_mb_inside_the_body_limit_is_a_form_error(
    app: Flask, client: FlaskClient
) -> None:
    big = b"%PDF-1.4\n" + b"0" * web.MAX_ATTACHMENT
    resp = post_tip(client, "big file", attachment=(big, "big.pdf", "application/pdf"))
    assert resp.status_code == 200
    assert "limit is 5 MB" in Page(resp.get_data(as_text=True)).text("attachment-error")
    assert tip_count(app) == 0


def test_body_over_5_mb_gets_the_413_page_not_500(app: Flask, client: FlaskClient) -> None:
    huge = b"\x89PNG\r\n\x1a\n" + b"0" * (6 * 1024 * 1024)
    resp = post_tip(client, "secret words 4711", attachment=(huge, "huge.png", "image/png"))
    assert resp.status_code == 413
    body = resp.get_data(as_text=True)
    assert "too large" in body
    assert "secret words" not in body
    assert "Traceback" not in body
    assert resp.headers["Content-Security-Policy"] == CSP
    assert tip_count(app) == 0


# -- receipts -------------------------------------------------------------------------------


def test_receipt_code_has_80_bits_and_passphrase_64() -> None:
    alphabet = set(receipts.ALPHABET)
    assert len(alphabet) == 32
    code_bits = receipts.CODE_LENGTH * (len(alphabet).bit_length() - 1)
    assert code_bits >= 80
    assert receipts.code_bits() >= 80
    words = receipts.wordlist()
    assert len(set(words)) == len(words) == 7776  # the EFF long list, as the package ships it
    import math  # noqa: PLC0415

    assert receipts.PASSPHRASE_WORDS * math.log2(len(set(words))) >= 64
    assert receipts.passphrase_bits() >= 64
    codes = {receipts.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 16 and set(c) <= alphabet for c in codes)


def test_no_table_holds_the_tip_text_the_code_or_the_passphrase(
    app: Flask, client: FlaskClient
) -> None:
    text = f"Marker {uuid.uuid4().hex} is bringing a knife tomorrow"
    code, passphrase = submit_tip(client, text, attachment=(tiny_png(), "a.png", "image/png"))
    rows = dump_tables(app)
    assert len(rows) > 10  # schools, staff, keys, audit, the tip...
    for needle in (text, text.split()[1], code, receipts.normalize_code(code) or "", passphrase):
        assert needle
        assert not stored_anywhere(rows, needle), needle
    assert not stored_anywhere(rows, receipts.normalize_passphrase(passphrase))
    # nor does Redis
    for key in services(app).redis.scan_iter():
        assert code.encode() not in key
        assert (receipts.normalize_code(code) or "").encode() not in key


# -- every page -----------------------------------------------------------------------------


def test_pages_have_no_script_no_third_party_url_and_carry_the_headers(
    client: FlaskClient,
) -> None:
    tokens = form_tokens(client, "/tip/lincoln")
    pages = {
        "form": client.get("/tip/lincoln"),
        "form-es": client.get("/tip/lincoln?lang=es"),
        "followup": client.get("/followup"),
        "receipt": client.post("/tip/lincoln", data={**tokens, "text": "tag on wall"}),
        "404": client.get("/nothing-here"),
        "405": client.delete("/followup"),
        "400": client.post("/followup", data={"code": "x"}),
    }
    for name, resp in pages.items():
        body = resp.get_data(as_text=True)
        assert "<script" not in body.lower(), name
        assert not re.search(r"https?://", body), name
        assert "<iframe" not in body.lower(), name
        assert resp.headers["Content-Security-Policy"] == CSP, name
        assert resp.headers["Referrer-Policy"] == "no-referrer", name
        assert resp.headers["X-Content-Type-Options"] == "nosniff", name
        assert resp.headers["Cache-Control"] == "no-store", name
        assert "lang=" in body, name
    assert pages["405"].status_code == 405
    assert "POST" in pages["405"].headers["Allow"]
    css = client.get("/static/tipline.css")
    assert css.status_code == 200
    assert css.headers["Content-Security-Policy"] == CSP
    text = css.get_data(as_text=True)
    css.close()
    assert not re.search(r"https?://|@import|@font-face|url\(", text)


def test_session_cookie_ends_with_the_browser_session(client: FlaskClient) -> None:
    resp = client.get("/tip/lincoln")
    cookie = resp.headers["Set-Cookie"].lower()
    assert "expires=" not in cookie
    assert "max-age" not in cookie
    assert "httponly" in cookie


def test_error_pages_never_show_a_traceback_or_submitted_text(env: dict[str, str]) -> None:
    app = build_app(env)  # not TESTING: the 500 handler answers as in production

    def boom() -> str:
        raise RuntimeError("student wrote: my secret")

    def refuse(code: int) -> str:
        abort(code)

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/refuse/<int:code>", "refuse", refuse)
    try:
        for code, title in [(403, "Not allowed"), (429, "Too many"), (503, "Try again later")]:
            resp = app.test_client().get(f"/refuse/{code}?lang=en")
            assert resp.status_code == code
            assert title in resp.get_data(as_text=True)
            assert resp.headers["Cache-Control"] == "no-store"
        resp = app.test_client().get("/boom")
        body = resp.get_data(as_text=True)
        assert resp.status_code == 500
        assert "Something went wrong" in body
        assert "my secret" not in body
        assert "Traceback" not in body
        assert "RuntimeError" not in body
        assert resp.headers["Content-Security-Policy"] == CSP
        json_resp = app.test_client().get("/nope", headers={"Accept": "application/json"})
        assert json_resp.status_code == 404
        assert json_resp.get_json()["error"] == 404
    finally:
        with app.app_context():
            db.engine.dispose()


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_colours_meet_wcag_aa_contrast() -> None:
    css = (STATIC / "tipline.css").read_text()
    var = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))
    text_pairs = [
        ("text", "bg"),
        ("muted", "bg"),
        ("link", "bg"),
        ("error", "bg"),
        ("accent-text", "accent"),
        ("danger-text", "danger-bg"),
    ]
    for fg, bg in text_pairs:
        assert _contrast(var[fg], var[bg]) >= 4.5, (fg, bg)
    for fg, bg in [("focus", "bg"), ("border", "bg"), ("focus", "focus-halo")]:
        assert _contrast(var[fg], var[bg]) >= 3.0, (fg, bg)
    assert ":focus" in css
