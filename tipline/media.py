"""MMS attachments: the worker fetches, checks, strips, seals, then deletes them at Twilio."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import audit, twilio_api, webtips
from tipline.crypto import CryptoError
from tipline.db import utcnow
from tipline.models import Attachment
from tipline.services import Services

log = logging.getLogger(__name__)

MAX_BYTES = webtips.MAX_ATTACHMENT  # the web form's limit
GIVE_UP_AFTER = timedelta(hours=24)  # Twilio down longer than this: stop retrying, say so
# After a transient failure Twilio is asked again only after a growing wait (30 s, 1 min, 2 min,
# ... 15 min), however often the job runs meanwhile: the sweeper re-enqueues every pending
# attachment on each pass, and that must not become a request to Twilio every two seconds.
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=15)
_RETRY_KEY = "tipline:media-retry:"  # + attachment id: a Redis hash {attempts, not_before}


def sniff(data: bytes) -> str | None:
    """The accepted type the bytes really are (never the type anyone declared); else None."""
    return webtips.sniff(data)


def fetch_and_store(
    session: Session, services: Services, attachment_id: str, now: datetime | None = None
) -> str:
    """Download a pending attachment from Twilio, seal it, and return its status.

    Idempotent: only a `pending` attachment is fetched, and the result is written under a row
    lock after a second look, so a duplicate job or a sweeper re-enqueue changes nothing.
    Statuses: stored | rejected (type, size, URL outside Twilio, not a decodable image) |
    unavailable (console mode, shredded) | failed (Twilio refused, or kept failing for a day) |
    pending (retry later, not before `retry_at`). Once stored, or rejected for its bytes (type,
    size, not decodable), the media is deleted at Twilio.
    """
    now = now or utcnow()
    att = session.get(Attachment, attachment_id)
    if att is None or att.status != "pending":
        return att.status if att is not None else "missing"
    if not services.settings.twilio_enabled:
        return _finish(session, attachment_id, "unavailable", "console mode")
    try:
        url = services.vault.get_text(att, "source") or ""
    except CryptoError:
        return _finish(session, attachment_id, "unavailable", "shredded")
    age = now - att.created_at
    session.rollback()  # no transaction stays open across the download
    not_before = retry_at(services, attachment_id)
    if not_before is not None and now < not_before:
        return "pending"  # backing off after Twilio trouble
    return _fetch(session, services, attachment_id, url, age, now)


def _fetch(
    session: Session,
    services: Services,
    attachment_id: str,
    url: str,
    age: timedelta,
    now: datetime,
) -> str:
    """Download, store, then delete at Twilio; or record the wait before the next try."""
    media = _download(session, services, attachment_id, url, age)
    if media == "pending":
        _back_off(services, attachment_id, now)
        return media
    _forget(services, attachment_id)
    if isinstance(media, str):
        return media
    status = _store(session, services, attachment_id, media.data)
    if status in {"stored", "rejected"}:  # kept here, or of no use to anyone: Twilio forgets it
        _delete_at_twilio(services, attachment_id, url)
    return status


def retry_at(services: Services, attachment_id: str) -> datetime | None:
    """When Twilio may be asked for this attachment again; None when there is no wait."""
    try:
        raw = services.redis.hget(_RETRY_KEY + attachment_id, "not_before")
    except (RedisError, OSError):
        return None  # without Redis the job does not run either; the sweeper brings it back
    if raw is None:
        return None
    return datetime.fromtimestamp(float(raw), UTC)


def _back_off(services: Services, attachment_id: str, now: datetime) -> None:
    key = _RETRY_KEY + attachment_id
    try:
        attempts = int(services.redis.hincrby(key, "attempts", 1))
        wait = min(RETRY_FIRST * 2 ** min(attempts - 1, 16), RETRY_MAX)
        services.redis.hset(key, "not_before", str((now + wait).timestamp()))
        services.redis.expire(key, GIVE_UP_AFTER + RETRY_MAX)
    except (RedisError, OSError) as e:
        log.warning("attachment %s: backoff not recorded (%s)", attachment_id, type(e).__name__)


def _forget(services: Services, attachment_id: str) -> None:
    with contextlib.suppress(RedisError, OSError):  # else the key expires on its own
        services.redis.delete(_RETRY_KEY + attachment_id)


def _delete_at_twilio(services: Services, attachment_id: str, url: str) -> None:
    """Ask Twilio to forget the media; a failure is only logged (the status stays as it is)."""
    try:
        twilio_api.delete_media(services.settings, url)
    except twilio_api.MediaError as e:
        # Never the URL: it names the message whose logs hold the student's number.
        log.warning("attachment %s: media not deleted at Twilio (%s)", attachment_id, e.reason)
    else:
        log.info("attachment %s: media deleted at Twilio", attachment_id)


def _store(session: Session, services: Services, attachment_id: str, data: bytes) -> str:
    """Seal accepted bytes under the attachment's own key, if nobody did it meanwhile."""
    try:
        # The web form's checks, before the row lock: decoding a large photo takes a moment.
        # GPS, phone model and time in EXIF/XMP must never be sealed with the picture, nor an
        # author with a PDF (a HEIC becomes a JPEG and is stored under that type).
        data, content_type = webtips.prepare_attachment(data)
    except webtips.AttachmentRejected as e:
        return _finish(session, attachment_id, "rejected", e.reason)
    att = _lock(session, attachment_id)
    if att is None or att.status != "pending":
        session.rollback()
        return att.status if att is not None else "missing"
    att.content_type = content_type
    att.size = len(data)
    services.vault.put(att, "content", data)
    # The URL names the message whose Twilio logs hold the student's number; nothing needs it
    # once the bytes are here (the delete at Twilio that follows uses this job's own copy).
    att._source = None
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
        if e.reason == "size":  # a Twilio URL that served too much: no use keeping it there
            status = _finish(session, attachment_id, "rejected", e.reason)
            if status == "rejected":
                _delete_at_twilio(services, attachment_id, url)
            return status
        if e.reason in {"origin", "redirect"}:  # not at Twilio, or sent somewhere no request goes
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
