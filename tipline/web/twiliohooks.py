"""What every Twilio webhook blueprint needs: a body limit and the signature check.

Twilio cannot send a CSRF token; the X-Twilio-Signature over `TIPLINE_PUBLIC_URL` + path (+
query) and the form is what proves where a request came from: an HMAC-SHA1 under the Auth
Token, or, where a Twilio Webhook Rule says so, under a SharedKey (`TWILIO_WEBHOOK_SHARED_KEYS`)
with the algorithm its settings header names. Only console mode (no Auth Token, and then no
Account SID either: `Settings` refuses one without the other) skips the check.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator, Mapping

from flask import Blueprint, Flask, Request, abort, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from werkzeug.datastructures import MultiDict

from tipline.extensions import csrf
from tipline.platform.services import services
from tipline.settings import Settings

log = logging.getLogger(__name__)


def guard(bp: Blueprint, max_body: int) -> None:
    """Exempt `bp` from CSRF, refuse bodies over `max_body` bytes, and 403 unsigned requests."""
    csrf.exempt(bp)

    @bp.url_value_preprocessor
    def _limit_body(_endpoint: str | None, _values: dict[str, object] | None) -> None:
        request.max_content_length = max_body

    @bp.before_request
    def _check_signature() -> None:
        if not signed_by_twilio():
            abort(403)


def signed_by_twilio() -> bool:
    """True when this request carries Twilio's signature, or Twilio is not configured."""
    settings = services().settings
    url = settings.public_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    refusal = signature_refusal(
        settings,
        url,
        request.form,
        request.headers.get(SIGNATURE_HEADER, ""),
        request.headers.get(SIGNATURE_SETTINGS_HEADER),
    )
    if refusal:
        log.warning("%s: %s", request.endpoint, refusal)
    return refusal is None


def signature_refusal(
    settings: Settings,
    url: str,
    form: MultiDict[str, str],
    signature: str,
    settings_header: str | None,
) -> str | None:
    """Why Twilio did not sign this (for the log), or None when it did or there is no Auth Token.

    `url` is the public URL the request was sent to, query included. Needs no request, so
    the webhook's fast path (`tipline.web.sms.fastpath`) checks with the very same code.
    """
    if settings.twilio_auth_token is None:  # console mode; never skipped once a token is set
        return None
    if not signature:
        return "missing Twilio signature"
    signer = _signer(settings.twilio_auth_token, settings.twilio_shared_keys, settings_header)
    if isinstance(signer, str):
        return signer
    secret, algorithm = signer
    validator = RequestValidator(secret)
    params = _Fields(form)
    # Twilio signs the URL exactly as configured, which is ours: one HMAC settles almost
    # every request. `validate` also tries the URL with and without a port (two more).
    try:
        exact = validator.compute_signature(url, params, algorithm)
    except ValueError:  # an algorithm newer than the installed twilio library
        return f"Twilio signed with {algorithm!r:.40}, which tipline cannot check"
    if hmac.compare_digest(exact.encode(), signature.encode()) or validator.validate(
        url, params, signature, algorithm
    ):
        return None
    return "wrong Twilio signature"


def _signer(
    auth_token: str, shared_keys: Mapping[str, str], settings_header: str | None
) -> tuple[str, str | None] | str:
    """The secret and algorithm Twilio signed this request with, or why there is none.

    Twilio signs with the Auth Token (HMAC-SHA1) unless a Webhook Rule has it sign with a
    SharedKey; then X-Twilio-Webhooks-Signature-Settings names the key and the algorithm.
    """
    if not settings_header:
        return auth_token, None
    key_id = _shared_key_id(settings_header)
    secret = shared_keys.get(key_id)
    if secret is None:
        return (
            f"Twilio signed with SharedKey {key_id!r:.80}, which TWILIO_WEBHOOK_SHARED_KEYS does "
            "not hold: add it there (or remove the Webhook Rule at Twilio)"
        )
    return secret, get_signature_algorithm(settings_header)


def _shared_key_id(settings_header: str) -> str:
    """The `key=` of `key=<SharedKey id>,algorithm=<algorithm>` ("" when there is none)."""
    for part in settings_header.split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "key":
            return value.strip()
    return ""


class _Fields:
    """The form as twilio's validator reads a multi-valued mapping: its keys and `getall`.

    Given werkzeug's MultiDict itself, the validator first asks for `getall`, which MultiDict
    does not have, and catches the AttributeError: one exception per field on every webhook.
    """

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def __len__(self) -> int:
        return len(self._form)

    def getall(self, name: str) -> list[str]:
        return self._form.getlist(name)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except on Twilio's webhooks: Twilio keeps no cookies,
    so opening and saving one there is work for nothing (the null session is read-only)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(WEBHOOK_PATHS):
            return None
        return super().open_session(app, request)


WEBHOOK_PATHS = ("/sms/", "/voice/")
