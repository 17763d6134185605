"""Twilio's REST API for MMS media, as the worker uses it: download, then delete.

The webhook never imports it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from tipline.settings import Settings

TIMEOUT = (5.0, 20.0)  # connect, read: a stalled download must not hold a worker for long
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class MediaError(Exception):
    """The media could not be downloaded. `final`: retrying cannot help (404, too large, ...)."""

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL without credentials in it; None otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def same_origin(url: str, base: str) -> bool:
    """True when `url` is on the origin of `base` (Twilio's API), and nowhere else."""
    mine = origin(url)
    return mine is not None and mine == origin(base)


def _public_https(url: str) -> bool:
    """A redirect target Twilio may send us to (its media CDN): https, a name, not an address.

    Twilio answers a media GET with a redirect to a signed CDN URL. Following it is safe only
    because the first hop was Twilio's own origin; refusing IP literals keeps even a bad
    redirect off link-local metadata and private addresses.
    """
    found = origin(url)
    if found is None or found[0] != "https" or found[1] == "localhost":
        return False
    try:
        ipaddress.ip_address(found[1].strip("[]"))
    except ValueError:
        return True
    return False


def fetch_media(settings: Settings, url: str, max_bytes: int) -> Media:
    """GET an MMS media URL on Twilio's API origin with the account's basic auth.

    Raises MediaError. The URL must be on `settings.twilio_api_base_url`'s origin: a forged or
    altered URL must never turn the worker into a proxy onto the internal network (SSRF).
    """
    if not settings.twilio_enabled:
        raise MediaError("unavailable", final=True)
    base = settings.twilio_api_base_url
    if not same_origin(url, base):
        raise MediaError("origin", final=True)
    auth = _auth(settings)
    target, with_auth = url, True
    with requests.Session() as http:
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                resp = http.get(
                    target,
                    auth=auth if with_auth else None,
                    stream=True,
                    timeout=TIMEOUT,
                    allow_redirects=False,
                )
            except requests.RequestException:
                raise MediaError("network", final=False) from None  # its text names the URL
            with resp:
                if not resp.is_redirect:
                    return _read(resp, max_bytes)
                target = urljoin(target, resp.headers.get("Location", ""))
            # Credentials go only to Twilio's own origin, never to the CDN.
            with_auth = same_origin(target, base)
            if not with_auth and not _public_https(target):
                raise MediaError("redirect", final=True)
    raise MediaError("redirects", final=True)


def delete_media(settings: Settings, url: str) -> None:
    """DELETE an MMS media resource at Twilio once its bytes are stored here.

    Twilio keeps MMS media until it is deleted, under a URL that names the message whose logs
    hold the student's number; the webhook's MediaUrl is that resource itself. Same origin
    rule and credentials as `fetch_media`; no redirect is followed. A 404 counts as deleted (a
    second run, or deleted by hand). Raises MediaError; its reason never holds the URL.
    """
    if not settings.twilio_enabled:
        raise MediaError("unavailable", final=True)
    if not same_origin(url, settings.twilio_api_base_url):
        raise MediaError("origin", final=True)
    with requests.Session() as http:
        try:
            resp = http.delete(url, auth=_auth(settings), timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException:
            raise MediaError("network", final=False) from None  # its text names the URL
        with resp:
            if resp.status_code in {200, 202, 204, 404}:
                return
            retry = resp.status_code == 429 or resp.status_code >= 500
            raise MediaError(f"http {resp.status_code}", final=not retry)


def _auth(settings: Settings) -> tuple[str, str]:
    return settings.twilio_account_sid or "", settings.twilio_auth_token or ""


def _read(resp: requests.Response, max_bytes: int) -> Media:
    if resp.status_code != 200:
        # 429 and 5xx are Twilio's trouble and pass; 4xx means this URL will never work.
        retry = resp.status_code == 429 or resp.status_code >= 500
        raise MediaError(f"http {resp.status_code}", final=not retry)
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise MediaError("size", final=True)
    data = bytearray()
    try:
        for chunk in resp.iter_content(_CHUNK):
            data += chunk
            if len(data) > max_bytes:  # a lying or absent Content-Length
                raise MediaError("size", final=True)
    except requests.RequestException:
        raise MediaError("network", final=False) from None
    content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return Media(bytes(data), content_type)
