"""rq jobs. Arguments are ids only; each job opens its own app context and is idempotent."""

from __future__ import annotations

from tipline.db import utcnow
from workers.context import job_context


def route_tip(tip_id: str) -> bool:
    """Route a stored tip. Idempotent: routing clears the tip's mark under a row lock."""
    from tipline import routing  # noqa: PLC0415
    from tipline.extensions import dbsession  # noqa: PLC0415

    with job_context():
        return routing.route_tip(dbsession(), tip_id, utcnow())


def fetch_media(attachment_id: str) -> str:
    """Download an MMS attachment from Twilio and seal it. Idempotent: only `pending` ones."""
    from tipline import media  # noqa: PLC0415
    from tipline.extensions import dbsession  # noqa: PLC0415
    from tipline.services import services  # noqa: PLC0415

    with job_context() as app:
        return media.fetch_and_store(dbsession(), services(app), attachment_id)
