"""Text messages from staff phones: commands (ACK), never tips."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tipline.alerting import acks
from tipline.models import School, Staff
from tipline.platform.services import Services


def handle_staff_sms(
    session: Session,
    services: Services,
    staff: Staff,
    school: School,
    body: str,
    now: datetime,
    via: str = "sms",
) -> str:
    """Act on a staff member's SMS and return the reply text; the caller commits.

    `ACK 4821` / `ACK T4821` / `ACK` acknowledges (see tipline.alerting.acks); the reply is the
    confirmation, and the others already paged are told by SMS once the caller commits.
    """

    reply = acks.handle_staff_message(session, services.vault, staff, school, body, now, via)
    return reply.text
