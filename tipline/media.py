"""MMS attachments: the worker downloads what the webhook recorded, checks it and seals it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import audit, twilio_api, webtips
from tipline.crypto import CryptoError
from tipline.db import utcnow
from tipline.models import Attachment
from tipline.services import Services

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
GIVE_UP_AFTER = timedelta(hours=24)  # Twilio down longer than this: stop retrying, say so
# HEIF brands (ISO/IEC 23008-12) phones use for photos; the rest is sniffed like web uploads.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
ACCEPTED = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "application/pdf"}
)


def sniff(data: bytes) -> str | None:
    """The accepted type the bytes really are (never the type anyone declared); else None."""
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS:
        return "image/heic"
    return webtips.sniff(data)


def fetch_and_store(
    session: Session, services: Services, attachment_id: str, now: datetime | None = None
) -> str:
    """Download a pending attachment from Twilio, seal it, and return its status.

    Idempotent: only a `pending` attachment is fetched, and the result is written under a row
    lock after a second look, so a duplicate job or a sweeper re-enqueue changes nothing.
    Statuses: stored | rejected (type, size, URL outside Twilio) | unavailable (console mode,
    shredded) | failed (Twilio refused, or kept failing for a day) | pending (retry later).
    """
    att = session.get(Attachment, attachment_id)
    if att is None or att.status != "pending":
        return att.status if att is not None else "missing"
    if not services.settings.twilio_enabled:
        return _finish(session, attachment_id, "unavailable", "console mode")
    try:
        url = services.vault.get_text(att, "source") or ""
    except CryptoError:
        return _finish(session, attachment_id, "unavailable", "shredded")
    age = (now or utcnow()) - att.created_at
    session.rollback()  # no transaction stays open across the download
    media = _download(session, services, attachment_id, url, age)
    if isinstance(media, str):
        return media
    return _store(session, services, attachment_id, media.data)


def _store(session: Session, services: Services, attachment_id: str, data: bytes) -> str:
    """Seal accepted bytes under the attachment's own key, if nobody did it meanwhile."""
    content_type = sniff(data)
    if content_type not in ACCEPTED:
        return _finish(session, attachment_id, "rejected", "type")
    att = _lock(session, attachment_id)
    if att is None or att.status != "pending":
        session.rollback()
        return att.status if att is not None else "missing"
    att.content_type = content_type
    att.size = len(data)
    services.vault.put(att, "content", data)
    att.status = "stored"
    audit.record(session, "system", "attachment.stored", att.tip_id, content_type=content_type)
    session.commit()
    log.info("attachment %s stored (%s, %d bytes)", attachment_id, content_type, len(data))
    return "stored"


def _download(
    session: Session, services: Services, attachment_id: str, url: str, age: timedelta
) -> twilio_api.Media | str:
    """The media, or the status the attachment was left in."""
    try:
        return twilio_api.fetch_media(services.settings, url, MAX_BYTES)
    except twilio_api.MediaError as e:
        if e.reason in {"origin", "redirect", "size"}:
            return _finish(session, attachment_id, "rejected", e.reason)
        if e.final or age > GIVE_UP_AFTER:
            return _finish(session, attachment_id, "failed", e.reason)
        log.warning("attachment %s: download failed (%s); will retry", attachment_id, e.reason)
        return "pending"


def _lock(session: Session, attachment_id: str) -> Attachment | None:
    return session.scalars(
        select(Attachment)
        .where(Attachment.id == attachment_id)
        .with_for_update(of=Attachment)
        .execution_options(populate_existing=True)
    ).first()


def _finish(session: Session, attachment_id: str, status: str, reason: str) -> str:
    """Record a final status other than stored; the sweeper stops re-enqueueing it."""
    att = _lock(session, attachment_id)
    if att is None or att.status != "pending":
        session.rollback()
        return att.status if att is not None else "missing"
    att.status = status
    audit.record(session, "system", f"attachment.{status}", att.tip_id, reason=reason)
    session.commit()
    log.info("attachment %s %s (%s)", attachment_id, status, reason)
    return status
