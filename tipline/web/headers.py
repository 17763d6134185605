"""Security headers on every response: no third-party content, no framing, no referrer."""

from __future__ import annotations

from flask import Flask, Response

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    # A tip page's URL names the school; no other site may learn a student visited it.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
}


def register_security_headers(app: Flask) -> None:
    """Add the headers to every response, unless a view set its own value."""
    # With "no-referrer" browsers send no Referer, which Flask-WTF's HTTPS referrer check
    # demands; every form POST over HTTPS would fail. The CSRF token (bound to the session)
    # and the SameSite=Lax session cookie already stop cross-site posts.
    app.config["WTF_CSRF_SSL_STRICT"] = False
    app.after_request(_add_headers)
    settings = app.config.get("TIPLINE_SETTINGS")
    if settings is not None and settings.public_url.startswith("https://"):
        app.after_request(_add_hsts)


# A year; no includeSubDomains: the district's other hosts are not ours to pin to HTTPS.
HSTS = "max-age=31536000"


def _add_hsts(resp: Response) -> Response:
    resp.headers.setdefault("Strict-Transport-Security", HSTS)
    return resp


_BY_LOWER = {name.lower(): (name, value) for name, value in HEADERS.items()}


def _add_headers(resp: Response) -> Response:
    # One pass over the response's headers, not a setdefault per header: each of those scans
    # the list and raises a KeyError inside werkzeug (most of this hook's cost, on every
    # response).
    present = {name.lower() for name, _ in resp.headers}
    for lower, (name, value) in _BY_LOWER.items():
        if lower not in present:
            resp.headers.add(name, value)
    return resp
