"""Alert calls: Twilio fetches the TwiML, gathers one key, reports the call's status.

Routes carry the call's outbound message id (128 random bits) and, like the SMS webhook,
refuse any request without a valid X-Twilio-Signature when Twilio credentials are set. The
words spoken are made from the alert row (no tip text: a phone on speaker is overheard).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request
from flask.typing import ResponseReturnValue
from twilio.twiml.voice_response import Gather, VoiceResponse

from tipline.alerting import acks, fallback, wording
from tipline.db import utcnow
from tipline.extensions import dbsession
from tipline.models import Alert, Delivery, Staff
from tipline.platform.services import services
from tipline.web import twiliohooks

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix="/voice")
MAX_BODY = 16 * 1024
twiliohooks.guard(bp, MAX_BODY)


def _twiml(resp: VoiceResponse) -> Response:
    return Response(str(resp), mimetype="text/xml")


def _call(outbound_id: str) -> tuple[Alert, Staff | None] | None:
    """The alert a call is about, and the person called."""
    session = dbsession()
    d = session.get(Delivery, outbound_id)
    if d is None or d.message.channel != "voice" or d.alert_id is None:
        return None
    alert = session.get(Alert, d.alert_id)
    if alert is None:
        return None
    staff = session.get(Staff, d.message.staff_id) if d.message.staff_id else None
    return alert, staff


@bp.post("/alert/<outbound_id>")
def alert_call(outbound_id: str) -> ResponseReturnValue:
    """Read the alert twice, each time waiting for a key; then say goodbye."""
    found = _call(outbound_id)
    resp = VoiceResponse()
    if found is None:
        resp.hangup()
        return _twiml(resp)
    alert, _staff = found
    if alert.status != "open":
        resp.say(acks.already_text(alert).replace(alert.tip.code, "this tip") + " Goodbye.")
        return _twiml(resp)
    action = f"{services().settings.public_url}/voice/ack/{outbound_id}"
    for _ in range(2):
        gather = Gather(num_digits=1, action=action, method="POST", timeout=6)
        gather.say(wording.voice_script(alert))
        resp.append(gather)
    resp.say("No key was pressed. The alert stays open. Goodbye.")
    return _twiml(resp)


@bp.post("/ack/<outbound_id>")
def keypress(outbound_id: str) -> ResponseReturnValue:
    """Key 1 acknowledges as the person called; any other key hears the alert again."""
    found = _call(outbound_id)
    resp = VoiceResponse()
    if found is None or found[1] is None:
        resp.hangup()
        return _twiml(resp)
    alert, staff = found
    assert staff is not None  # noqa: S101 - checked above
    if request.form.get("Digits", "") != "1":
        resp.redirect(f"{services().settings.public_url}/voice/alert/{outbound_id}")
        return _twiml(resp)
    session = dbsession()
    svc = services()
    result = acks.acknowledge(session, svc.vault, alert.id, staff, "voice", utcnow())
    session.commit()
    if result.acked:
        log.info("alert %s acknowledged by %s by keypress", alert.tip.code, staff.key)
        resp.say("Acknowledged. Thank you. The others paged will be told.")
    else:
        resp.say(result.reply.replace(alert.tip.code, "this tip"))
    resp.hangup()
    return _twiml(resp)


@bp.post("/status/<outbound_id>")
def call_status(outbound_id: str) -> ResponseReturnValue:
    """Twilio's call status callback: keep the outcome (no-answer, busy, completed...)."""
    state = (request.form.get("CallStatus") or "").strip().lower()
    if not state:
        abort(400)
    session = dbsession()
    fallback.record_call_status(session, outbound_id, state, utcnow())
    session.commit()
    return Response(status=204)
