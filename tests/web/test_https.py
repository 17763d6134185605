"""With an https public URL: a `__Host-` session cookie, Secure, and HSTS on every response."""

from __future__ import annotations

from flask import Flask

from tests.conftest import app_for


def test_https_gives_a_host_only_secure_cookie_and_hsts(env: dict[str, str]) -> None:
    with app_for({**env, "TIPLINE_PUBLIC_URL": "https://tipline.test"}) as app:
        client = app.test_client()
        first = client.get("/admin/login", base_url="https://tipline.test")
        assert first.headers["Strict-Transport-Security"] == "max-age=31536000"
        cookie = first.headers["Set-Cookie"]
        assert cookie.startswith("__Host-session=")
        assert "Secure" in cookie
        assert "Path=/" in cookie
        assert "Domain" not in cookie
        tip_form = client.get("/tip/lincoln", base_url="https://tipline.test")
        assert tip_form.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_plain_http_sends_no_hsts(app: Flask) -> None:
    response = app.test_client().get("/admin/login")
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["Set-Cookie"].startswith("session=")
