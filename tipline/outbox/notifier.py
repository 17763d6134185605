"""The one module that talks to Twilio's REST API (and to SMTP): sends, calls, look-ups.

Every failure is sorted into one of three kinds, because that decides whether a retry may
send a second message:

- `Transient`: Twilio answered and created nothing (429, 5xx), or the connection was never
  made. Safe to retry.
- `Ambiguous`: the request left this process and no answer came back (read timeout, connection
  dropped mid-request). Twilio may have created the message. Twilio's Messages API takes no
  idempotency key, so before trying again the caller asks Twilio (`find_sms`/`find_call`)
  whether a message to that number from that number with that body exists since the attempt
  began, and adopts its SID if so. Only when the look-up says no, or cannot answer, is the
  message sent again: for a life-safety page a duplicate is a nuisance, a missing one is not.
- `Final`: never retry (21610: the recipient opted out; an invalid number; bad credentials).

Console mode (no Twilio credentials) prints one line per message and never the body.

MMS media, as the worker uses it (the webhook never does): `fetch_media` downloads from
Twilio's own origin only, `delete_media` asks Twilio to forget it once stored.
`delete_message` asks Twilio to forget a whole message once it is final (tipline.outbox.erase).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import smtplib
import ssl
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, TextIO
from urllib.parse import unquote, urljoin, urlsplit

import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tipline.settings import Settings

log = logging.getLogger(__name__)
# twilio's HTTP client logs query strings (a `To` number) at INFO: keep it to warnings.
_http_log = logging.getLogger("tipline.outbox.notifier.http")
_http_log.setLevel(logging.WARNING)

TIMEOUT = 10.0  # seconds for one Twilio request; well inside a send job's own timeout
OPTED_OUT = "21610"
LOOKBACK = 20  # recent messages to one number checked after an ambiguous attempt
SKEW = timedelta(minutes=1)  # clock difference allowed between this host and Twilio
_FINAL_CODES = {OPTED_OUT, "21211", "21614", "21408", "21612", "21606", "20003", "20404"}


class SendError(Exception):
    """A send that did not go through; `code` is Twilio's error code when there is one."""

    def __init__(self, message: str, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class Transient(SendError):
    """Nothing was created: retry with backoff."""


class Ambiguous(SendError):
    """Maybe created: look it up before sending again."""


class Final(SendError):
    """Will not work by retrying."""


@dataclass(frozen=True)
class Sent:
    sid: str | None  # None for email: SMTP gives no id worth keeping unique
    status: str


def _classify(exc: Exception) -> SendError:  # noqa: PLR0911 - one answer per kind
    """Map a twilio/requests/smtplib exception onto Transient, Ambiguous or Final."""
    if isinstance(exc, SendError):
        return exc

    status = getattr(exc, "status", None)
    if isinstance(status, int):  # TwilioRestException
        code = getattr(exc, "code", None)
        code_s = None if code is None else str(code)
        if status == 429 or status >= 500:
            return Transient(f"twilio answered {status}", code_s, status)
        if code_s in _FINAL_CODES or 400 <= status < 500:
            return Final(f"twilio refused ({status}, error {code_s})", code_s, status)
        return Transient(f"twilio answered {status}", code_s, status)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Transient("connect timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "NewConnectionError" in repr(exc) or "Connection refused" in str(exc):
            return Transient("connection refused")
        return Ambiguous(f"connection lost ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.Timeout):
        return Ambiguous("read timeout")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return Final("recipient refused by the mail server")
    if isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600:
        return Final(f"mail server refused ({exc.smtp_code})")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Ambiguous("mail server disconnected")
    if isinstance(exc, smtplib.SMTPException | OSError):
        return Transient(f"mail server unavailable ({type(exc).__name__})")
    return Ambiguous(f"unexpected {type(exc).__name__}")


def _recent(created: Any, since: datetime) -> bool:
    return isinstance(created, datetime) and created >= since - SKEW


@dataclass
class Notifier:
    """Sends through Twilio (or prints, in console mode) and SMTP; built once per process."""

    settings: Settings
    out: TextIO = field(default_factory=lambda: sys.stdout)
    timeout: float = TIMEOUT
    _client: Any = None

    @property
    def console(self) -> bool:
        return not self.settings.twilio_enabled

    @property
    def email_enabled(self) -> bool:
        return self.settings.smtp_url is not None

    def client(self) -> Any:
        if self._client is None:
            client = Client(
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token,
                http_client=TwilioHttpClient(timeout=self.timeout, logger=_http_log),
            )
            client.api.base_url = self.settings.twilio_api_base_url
            self._client = client
        return self._client

    def close(self) -> None:
        """Close the pooled HTTP connections (tests, and a worker shutting down)."""
        if self._client is not None:
            session = getattr(self._client.http_client, "session", None)
            if session is not None:
                session.close()
            self._client = None

    def print_line(self, line: str) -> None:
        """Console mode's one line per message (the caller never passes a body)."""
        self.out.write(line + "\n")
        self.out.flush()

    # -- Twilio ------------------------------------------------------------------------------
    def sms(
        self, *, to: str, from_: str, body: str, status_callback: str, validity: int | None
    ) -> Sent:
        kwargs: dict[str, Any] = {"to": to, "from_": from_, "body": body}
        kwargs["status_callback"] = status_callback
        if validity:
            kwargs["validity_period"] = validity
        try:
            msg = self.client().messages.create(**kwargs)
        except Exception as e:
            raise _classify(e) from None
        return Sent(str(msg.sid), str(msg.status or "queued"))

    def call(self, *, to: str, from_: str, url: str, status_callback: str) -> Sent:
        try:
            call = self.client().calls.create(
                to=to,
                from_=from_,
                url=url,
                status_callback=status_callback,
                timeout=30,  # ring time before no-answer
            )
        except Exception as e:
            raise _classify(e) from None
        return Sent(str(call.sid), str(call.status or "queued"))

    def find_sms(self, *, to: str, from_: str, body: str, since: datetime) -> list[str]:
        """SIDs of messages with this body to `to` from `from_` created since `since` (less a
        minute of clock skew), newest first; [] when there are none or Twilio cannot say.

        Not filtered by DateSent: a message still queued has none.
        """
        try:
            return [
                str(m.sid)
                for m in self.client().messages.list(to=to, from_=from_, limit=LOOKBACK)
                if m.body == body and _recent(m.date_created, since)
            ]
        except Exception as e:  # a look-up that fails is a "don't know": the caller resends
            log.warning("message look-up failed (%s); treating as not sent", type(e).__name__)
            return []

    def find_call(self, *, to: str, from_: str, since: datetime) -> list[str]:
        """SIDs of calls to `to` from `from_` created since `since`, newest first."""
        try:
            return [
                str(c.sid)
                for c in self.client().calls.list(to=to, from_=from_, limit=LOOKBACK)
                if _recent(c.date_created, since)
            ]
        except Exception as e:
            log.warning("call look-up failed (%s); treating as not placed", type(e).__name__)
            return []

    # -- the account's numbers ---------------------------------------------------------------
    def messaging_webhooks(self, number: str) -> list[str]:
        """The messaging webhook URL of `number` at Twilio, once per match (none: not ours)."""
        try:
            found = self.client().incoming_phone_numbers.list(phone_number=number, limit=20)
        except Exception as e:
            raise _classify(e) from None
        return [str(n.sms_url or "") for n in found if n.phone_number == number]

    # -- email -------------------------------------------------------------------------------
    def email(self, *, to: str, subject: str, body: str, quotes_tip: bool = True) -> Sent:
        """Send through TIPLINE_SMTP_URL: smtp://[user:pass@]host:port, smtp+starttls://, smtps://.

        A mail that `quotes_tip` goes only over TLS (SMTPS, or STARTTLS, which a plain smtp://
        server must then offer): tip text never crosses the network in the clear, whatever the
        URL says. A mail without tip text still takes STARTTLS whenever the server offers it.
        """
        url = self.settings.smtp_url
        if url is None:
            raise Final("email is not configured (TIPLINE_SMTP_URL)")
        parts = urlsplit(url)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.settings.mail_from, to, subject
        msg.set_content(body)
        host = parts.hostname or "localhost"
        try:
            smtp: smtplib.SMTP
            if parts.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(
                    host, parts.port or 465, timeout=self.timeout, context=_tls_context()
                )
            else:
                smtp = smtplib.SMTP(host, parts.port or 25, timeout=self.timeout)
            with smtp:
                if parts.scheme != "smtps":
                    _start_tls(
                        smtp,
                        required=quotes_tip
                        or bool(parts.username)
                        or parts.scheme == "smtp+starttls",
                    )
                if parts.username:
                    smtp.login(unquote(parts.username), unquote(parts.password or ""))
                smtp.send_message(msg)
        except Exception as e:
            raise _classify(e) from None
        return Sent(None, "sent")


def _tls_context() -> ssl.SSLContext:
    """Certificate and host name checked: TLS to an impostor would protect nothing."""
    return ssl.create_default_context()


def _start_tls(smtp: smtplib.SMTP, *, required: bool) -> None:
    """STARTTLS when the server offers it; when `required` and it does not, send nothing."""
    smtp.ehlo()
    if smtp.has_extn("starttls"):
        smtp.starttls(context=_tls_context())
        smtp.ehlo()
    elif required:
        raise Final(
            "mail server offers no STARTTLS; a mail quoting a tip or a login is never sent "
            "in the clear (use smtps:// or a server with STARTTLS)"
        )


# -- MMS media ----------------------------------------------------------------------------

MEDIA_TIMEOUT = (5.0, 20.0)  # connect, read: a stalled download must not hold a worker for long
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
                    timeout=MEDIA_TIMEOUT,
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
    status, _code = _delete(settings, url, MEDIA_TIMEOUT)
    if status is None:
        raise MediaError("network", final=False)
    if status in DELETED:
        return
    retry = status == 429 or status >= 500
    raise MediaError(f"http {status}", final=not retry)


# -- forgetting messages -------------------------------------------------------------------

DELETE_TIMEOUT = (3.05, 10.0)  # connect, read: the sweeper's pass waits for it
NOT_FINAL = "20009"  # Twilio's error code for a message it is still delivering
_MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


class DeleteError(Exception):
    """Twilio did not delete a message.

    `not_final`: Twilio still holds it in flight; ask again much later. `outage`: Twilio or
    the network is in trouble (429, 5xx, no answer); nothing else is worth asking now.
    """

    def __init__(self, reason: str, *, not_final: bool = False, outage: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_final = not_final
        self.outage = outage


def delete_message(settings: Settings, sid: str) -> None:
    """DELETE a message (and with it its media) at Twilio; a 404 counts as deleted.

    Twilio keeps each message's numbers and body in its logs until it is deleted. A message
    still on its way cannot be deleted yet (HTTP 409, or 400 with error 20009). Raises
    DeleteError; its reason never holds the SID.
    """
    if not settings.twilio_enabled:
        raise DeleteError("unavailable")
    if not _MESSAGE_SID.match(sid):
        raise DeleteError("not a message SID")
    url = (
        f"{settings.twilio_api_base_url.rstrip('/')}/2010-04-01/Accounts/"
        f"{settings.twilio_account_sid}/Messages/{sid}.json"
    )
    status, code = _delete(settings, url, DELETE_TIMEOUT)
    if status is None:
        raise DeleteError("network", outage=True)
    if status in DELETED:
        return
    if status == 429 or status >= 500:
        raise DeleteError(f"http {status}", outage=True)
    not_final = status == 409 or code == NOT_FINAL
    raise DeleteError(f"http {status}, error {code}", not_final=not_final)


DELETED = frozenset({200, 202, 204, 404})  # 404: gone already (a second run, or by hand)


def _delete(
    settings: Settings, url: str, timeout: tuple[float, float]
) -> tuple[int | None, str | None]:
    """DELETE `url` at Twilio with the account's credentials, following no redirect: the HTTP
    status and Twilio's error code, or (None, None) when no answer came (the exception's text
    would name the URL, so it is dropped)."""
    with requests.Session() as http:
        try:
            resp = http.delete(url, auth=_auth(settings), timeout=timeout, allow_redirects=False)
        except requests.RequestException:
            return None, None
        with resp:
            return resp.status_code, None if resp.status_code in DELETED else _error_code(resp)


def _error_code(resp: requests.Response) -> str | None:
    try:
        found = resp.json().get("code")
    except (ValueError, AttributeError):
        return None
    return None if found is None else str(found)


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
