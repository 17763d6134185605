"""Twilio webhooks: inbound texts and delivery status callbacks.

The views only translate HTTP: signature, form fields, TwiML. They import no Twilio REST
client and make no network call; MMS media and routing are handed to the worker after the
commit. Nothing here logs a body or a phone number.
"""

from __future__ import annotations

import logging
from typing import cast
from xml.sax.saxutils import escape

from flask import Blueprint, Response, abort, current_app, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from tipline.alerting import fallback
from tipline.db import utcnow
from tipline.errors import TiplineError
from tipline.extensions import db, dbsession
from tipline.intake import outage, replies, sms
from tipline.platform.metrics import SMS_INBOUND
from tipline.platform.services import services
from tipline.web import twiliohooks
from tipline.web.errorpages import database_unavailable
from tipline.web.sms import drainer

log = logging.getLogger(__name__)

bp = Blueprint("sms", __name__, url_prefix="/sms")
# A real webhook is a few kB (1,600 characters of body plus up to ten media URLs); refusing
# more before parsing keeps a flood of large posts from costing memory.
MAX_BODY = 64 * 1024
twiliohooks.guard(bp, MAX_BODY)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
MESSAGE_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message{}>{}</Message></Response>'
STATUS_PATH = "/sms/status"
REQUIRED = ("From", "To", "Body", "MessageSid")
_QUOTES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#09;"}
_ERRORS = {400: "bad request", 403: "forbidden", 413: "request too large"}


@bp.errorhandler(400)
@bp.errorhandler(403)
@bp.errorhandler(413)
def _short_error(e: HTTPException) -> ResponseReturnValue:
    # Our own few words only: Twilio shows this to the operator in its debugger, and a
    # werkzeug description could quote the request.
    code = e.code or 400
    return Response(_ERRORS.get(code, "error") + "\n", code, mimetype="text/plain")


@bp.errorhandler(DBAPIError)
def _database_down(e: DBAPIError) -> ResponseReturnValue:
    """Nothing could be stored: tell the student to text again (and 911), never a bare 500.

    A 200 with TwiML is the only answer Twilio passes on to the student; an error status
    would only reach the operator's debugger. A status callback gets a plain 503.
    """
    database_unavailable(e)
    if request.endpoint == "sms.inbound":
        return Response(twiml(replies.unavailable_reply()), mimetype="text/xml")
    return Response("database unavailable\n", 503, mimetype="text/plain")


@bp.post("/inbound")
def inbound() -> ResponseReturnValue:
    """A student's text (a tip or a follow-up), a staff command, or a keyword to ignore."""
    form = request.form
    if not complete(form):
        abort(400)
    body, status = answer(form)
    return Response(body, status, mimetype="text/xml")


def complete(form: MultiDict[str, str]) -> bool:
    """Every field a text must carry is there."""
    return all(form.get(name) is not None for name in REQUIRED)


def answer(form: MultiDict[str, str]) -> tuple[str, int]:
    """Store what a complete, signed inbound form means; its TwiML and HTTP status.

    Needs the app context only, no request: `tipline.web.sms.fastpath` calls it too.
    """
    svc = services()
    now = utcnow()
    try:
        outcome = sms.receive_and_commit(
            # The scoped session, not a Session made now: a first text never needs one.
            cast(Session, db.session),
            svc,
            to=form["To"],
            from_=form["From"],
            body=form["Body"],
            sid=form["MessageSid"],
            media=_media(form),
            now=now,
            bind=db.engine,
        )
    except SQLAlchemyError as e:
        # The database is down (at connect or mid-transaction): the text goes to the spool
        # and the student is answered as usual; it is stored when the database is back.
        _discard_session()
        log.warning("sms: database unavailable (%s); the text goes to the spool", _kind(e))
        try:
            outcome = outage.receive_offline(
                svc,
                to=form["To"],
                from_=form["From"],
                body=form["Body"],
                sid=form["MessageSid"],
                media=_media(form),
                now=now,
            )
        except (OSError, TiplineError) as spool_error:  # a full disk, a broken config file
            log.error("sms: the spool could not take the text (%s)", type(spool_error).__name__)
            raise e from None  # answered "text again" by `_database_down`
        drainer.spooled(current_app._get_current_object())  # type: ignore[attr-defined]
    else:
        drainer.after_success(current_app._get_current_object(), svc)  # type: ignore[attr-defined]
    sms.hand_off(svc, outcome)
    SMS_INBOUND.labels(kind=outcome.kind).inc()
    # The reply reports to /sms/status like a sent message, so Twilio can be asked to delete
    # it once it is final.
    reply = twiml(outcome.reply, svc.settings.public_url + STATUS_PATH)
    return reply, 404 if outcome.kind == "unknown_school" else 200


@bp.post("/status")
def status() -> ResponseReturnValue:
    """Delivery state of a message tipline sent; unknown SIDs are acknowledged and ignored."""
    form = request.form
    sid, state = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not state:
        abort(400)
    session = dbsession()
    msg = fallback.record_status(
        session, sid, state, form.get("ErrorCode"), utcnow(), services().vault
    )
    session.commit()
    if msg is not None:
        log.info("outbound %s is now %s", msg.id, msg.status)
    return Response(status=204)


def _kind(e: SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    return type(orig if orig is not None else e).__name__


def _discard_session() -> None:
    """Drop the request's session and its connection: both may be broken."""
    try:
        db.session.remove()
    except SQLAlchemyError:
        log.debug("the session's connection was already gone")


def _media(form: MultiDict[str, str]) -> list[sms.MediaRef]:
    try:
        count = min(int(form.get("NumMedia", "0")), sms.MAX_MEDIA)
    except ValueError:
        count = 0
    refs = []
    for n in range(max(count, 0)):
        url = form.get(f"MediaUrl{n}")
        if url:
            refs.append(sms.MediaRef(url, form.get(f"MediaContentType{n}", "")))
    return refs


def twiml(text: str, action: str | None = None) -> str:
    """One <Message> of TwiML, as twilio's MessagingResponse writes it (tests compare the two);
    the same characters are escaped, without building an ElementTree per reply. `action`:
    where Twilio reports the reply's status."""
    if not text:
        return EMPTY_TWIML
    attrs = f' action="{escape(action, _QUOTES)}"' if action else ""
    return MESSAGE_TWIML.format(attrs, escape(text))
