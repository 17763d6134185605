"""What alerts say. GSM-7 only, at most two segments, never the student's number.

The SMS carries severity, category, tip code, school, "Reply ACK 4821" and the confirm link;
an "excerpt" school adds a short, GSM-7, number-masked piece of the tip text, a "link" school
none. Calls say no tip text at all (a phone on speaker is overheard). Console lines and the
outbox `summary` carry no tip text either.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.models import Alert, Incident
from tipline.outbox import gsm

EXCERPT_MAX = 110  # septets of tip text in an "excerpt" alert
_LONG_NUMBER = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def label(alert: Alert) -> str:
    return f"{alert.severity.upper()} {alert.category.replace('_', '-')}"


def tip_count(session: Session, alert: Alert) -> int:
    if alert.incident_id is None:
        return 1
    incident = session.get(Incident, alert.incident_id)
    return incident.tip_count if incident else 1


def reopened_note(session: Session, alert: Alert) -> str | None:
    """`new report on incident T4821, acked 10:02` when an earlier alert of the alert's
    incident was acknowledged (or closed): the SRO must not take it for the old page."""
    if alert.incident_id is None:
        return None
    earlier = session.scalars(
        select(Alert)
        .where(Alert.incident_id == alert.incident_id, Alert.id != alert.id)
        .order_by(Alert.created_at, Alert.id)
    ).all()
    ended = [a for a in earlier if a.status not in ("open", "superseded")]
    if not ended or earlier[0].tip_id == alert.tip_id:
        return None
    last = max(ended, key=lambda a: a.acked_at or a.created_at)
    if last.acked_at is None:
        return f"new report on incident {earlier[0].tip.code}, {last.status}"
    at = last.acked_at.astimezone(ZoneInfo(alert.school.timezone)).strftime("%H:%M")
    return f"new report on incident {earlier[0].tip.code}, acked {at}"


def summary(alert: Alert, count: int = 1, note: str | None = None) -> str:
    """The console line's text: `CRITICAL weapon T4821 · Reply ACK 4821` (no tip text), with
    `T5067 · new report on incident T4821, acked 10:02 · Reply ACK 5067` after an ack."""
    more = f" ({count} tips)" if count > 1 else ""
    about = f" · {note}" if note else ""
    return f"{label(alert)} {alert.tip.code}{about}{more} · Reply ACK {alert.tip.code_digits}"


def voice_summary(alert: Alert) -> str:
    return f"{label(alert)} {alert.tip.code} · press 1 to acknowledge"


def voice_script(alert: Alert) -> str:
    """What the call says; no tip text (a phone on speaker is heard by whoever is near)."""
    digits = " ".join(alert.tip.code_digits)
    return (
        f"This is the tip line. {alert.severity} {alert.category.replace('_', ' ')} alert, "
        f"tip T {digits}, at {alert.school.name}. Press 1 to acknowledge."
    )


def excerpt(text: str, budget: int) -> str:
    """A short GSM-7 excerpt; long digit runs (a phone number a student typed) are masked."""
    masked = _LONG_NUMBER.sub("#", text)
    return gsm.cut(gsm.to_gsm7(masked), min(budget, EXCERPT_MAX))


def sms_text(
    alert: Alert, count: int, tip_text: str | None, link: str, note: str | None = None
) -> str:
    """The alert SMS: severity, category, tip code, school, ACK code; at most 2 segments."""
    more = f" ({count} tips)" if count > 1 else ""
    about = f" · {note}" if note else ""
    head = gsm.to_gsm7(f"{label(alert)} {alert.tip.code}{about}{more} {alert.school.name}")
    tail = f" Reply ACK {alert.tip.code_digits} or confirm: {link}"
    if tip_text is None or alert.school.alert_text == "link":
        middle = ": open the link."
    else:
        room = gsm.TWO_SEGMENTS - gsm.septets(head + tail) - 4
        quoted = excerpt(tip_text, room)
        middle = f': "{quoted}"' if quoted else ""
    body = head + middle + tail
    if gsm.septets(body) > gsm.TWO_SEGMENTS:  # a very long school name: drop it, keep the rest
        body = gsm.to_gsm7(f"{label(alert)} {alert.tip.code}{about}{more}") + tail
    return body


def email_text(alert: Alert, count: int, tip_text: str | None, link: str) -> str:
    lines = [
        f"{label(alert)} tip {alert.tip.code} at {alert.school.name}"
        + (f" ({count} tips about this event)" if count > 1 else ""),
        "",
    ]
    if tip_text is not None and alert.school.alert_text != "link":
        lines += ["Excerpt: " + _LONG_NUMBER.sub("#", tip_text)[:400], ""]
    lines += [f"Acknowledge: {link}", f"or reply ACK {alert.tip.code_digits} by SMS."]
    return "\n".join(lines)
