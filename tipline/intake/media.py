"""Attachments in the media worker: MMS media fetched from Twilio, web uploads sealed as they
came; both cleaned by the sandbox, sealed, and (MMS) deleted at Twilio.

Runs on the media queue (`MEDIA_QUEUE`), in a process that sends no pages: the decoding itself
runs in a child process with hard limits (`tipline.intake.sandbox`). A file the sandbox refuses
is recorded as rejected with its reason, and what was kept of it is shredded.

The sealed media URL is kept until Twilio has forgotten the media (or the URL was never
Twilio's): a delete that fails is tried again, backing off, by the same job the sweeper
re-enqueues for pending downloads, for up to GIVE_UP_AFTER.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tipline.db import utcnow
from tipline.intake import filetypes, sandbox
from tipline.models import CHECKING, FORGOTTEN_AT_TWILIO, Attachment, DataKey
from tipline.outbox import notifier
from tipline.platform.services import Services
from tipline.vault import audit
from tipline.vault.crypto import CryptoError

log = logging.getLogger(__name__)

MAX_BYTES = filetypes.MAX_ATTACHMENT  # the web form's limit
GIVE_UP_AFTER = timedelta(hours=24)  # Twilio down longer than this: stop retrying, say so
# After a transient failure Twilio is asked again only after a growing wait (30 s, 1 min, 2 min,
# ... 15 min), however often the job runs meanwhile: the sweeper re-enqueues every pending
# attachment on each pass, and that must not become a request to Twilio every two seconds.
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=15)
_RETRY_KEY = "tipline:media-retry:"  # + attachment id: a Redis hash {attempts, not_before}
_DELETE_KEY = "tipline:media-delete-retry:"  # the same, for the delete at Twilio
# A file the sandbox ran out of wall-clock time on is checked once more later, when the machine
# may be less busy; a second timeout refuses it (a hostile file times out every time). Memory
# and CPU limits are the file's own doing: refused at once.
SANDBOX_TRIES = 2
_TIMEOUTS_KEY = "tipline:media-timeouts:"  # + attachment id: how often the sandbox timed out


def sniff(data: bytes) -> str | None:
    """The accepted type the bytes really are (never the type anyone declared); else None."""
    return filetypes.sniff(data)


def process(
    session: Session,
    services: Services,
    attachment_id: str,
    now: datetime | None = None,
    limits: sandbox.Limits | None = None,
) -> str:
    """The media job's work: check a web upload (`check_upload`), or fetch an MMS's media."""
    status = session.scalar(select(Attachment.status).where(Attachment.id == attachment_id))
    if status == CHECKING:
        not_before = retry_at(services, attachment_id)
        if not_before is not None and (now or utcnow()) < not_before:
            return "pending"  # the sandbox timed out: checked again after the wait
        return check_upload(session, services, attachment_id, limits)
    return fetch_and_store(session, services, attachment_id, now, limits)


def fetch_and_store(
    session: Session,
    services: Services,
    attachment_id: str,
    now: datetime | None = None,
    limits: sandbox.Limits | None = None,
) -> str:
    """Download a pending attachment from Twilio, clean and seal it, and return its status.

    Idempotent: only a `pending` attachment is fetched, and the result is written under a row
    lock after a second look, so a duplicate job or a sweeper re-enqueue changes nothing.
    Statuses: stored | rejected (type, size, URL outside Twilio, not a decodable image) |
    unavailable (console mode, shredded) | failed (Twilio refused, or kept failing for a day) |
    pending (retry later, not before `retry_at`). Once stored, or rejected for its bytes (type,
    size, not decodable), the media is deleted at Twilio.
    """
    now = now or utcnow()
    att = session.get(Attachment, attachment_id)
    if att is not None and att.status in FORGOTTEN_AT_TWILIO and att._source is not None:
        return _retry_delete(session, services, att, now)
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
    return _fetch(session, services, attachment_id, url, age, now, limits)


def check_upload(
    session: Session,
    services: Services,
    attachment_id: str,
    limits: sandbox.Limits | None = None,
) -> str:
    """Clean a web upload in the sandbox: stored under a new data key, or rejected.

    Idempotent: only a `checking` attachment is read, and the result is written under a row
    lock after a second look. Either way the key the raw upload was sealed under is shredded,
    so its metadata (or whatever made the sandbox refuse it) is gone for good.
    """
    att = session.get(Attachment, attachment_id)
    if att is None or att.status != CHECKING:
        return att.status if att is not None else "missing"
    try:
        raw = services.vault.get_bytes(att, "content") or b""
    except CryptoError:
        return _finish(session, attachment_id, "unavailable", "shredded", expect=CHECKING)
    session.rollback()  # no transaction stays open while the sandbox works
    try:
        cleaned = sandbox.clean(raw, limits)
    except sandbox.Refused as e:
        if _try_again_later(services, attachment_id, e.reason):
            return "pending"
        return _finish(session, attachment_id, "rejected", e.reason, expect=CHECKING)
    finally:
        del raw
    _forget(services, attachment_id, _TIMEOUTS_KEY)
    return _seal_clean(session, services, attachment_id, cleaned, expect=CHECKING, rekey=True)


def _try_again_later(services: Services, attachment_id: str, reason: str) -> bool:
    """After a sandbox timeout that was not yet the last try: the wait before the next one is
    recorded (the media job schedules itself for then) and True is returned."""
    if reason != "timeout":
        return False
    try:
        key = _TIMEOUTS_KEY + attachment_id
        timeouts = int(services.redis.incr(key))
        services.redis.expire(key, GIVE_UP_AFTER)
    except (RedisError, OSError):
        return False  # no record of tries: refuse rather than loop
    if timeouts >= SANDBOX_TRIES:
        _forget(services, attachment_id, _TIMEOUTS_KEY)
        return False
    _back_off(services, attachment_id, utcnow())
    log.warning(
        "attachment %s: the sandbox ran out of time (try %d of %d); checked again later",
        attachment_id,
        timeouts,
        SANDBOX_TRIES,
    )
    return True


def _fetch(
    session: Session,
    services: Services,
    attachment_id: str,
    url: str,
    age: timedelta,
    now: datetime,
    limits: sandbox.Limits | None = None,
) -> str:
    """Download, store, then delete at Twilio; or record the wait before the next try."""
    media = _download(session, services, attachment_id, url, age)
    if media == "pending":
        _back_off(services, attachment_id, now)
        return media
    _forget(services, attachment_id)
    if isinstance(media, str):
        return media
    status = _store(session, services, attachment_id, media.data, limits)
    if status in FORGOTTEN_AT_TWILIO:  # kept here, or of no use to anyone: Twilio forgets it
        _delete_at_twilio(session, services, attachment_id, url, now)
    return status


def _retry_delete(session: Session, services: Services, att: Attachment, now: datetime) -> str:
    """Ask Twilio again to forget media whose delete failed; the status stays as it is."""
    attachment_id, status, age = att.id, att.status, now - att.created_at
    try:
        url = services.vault.get_text(att, "source") or ""
    except CryptoError:
        url = ""  # shredded: nothing left to ask about
    session.rollback()
    not_before = retry_at(services, attachment_id, _DELETE_KEY)
    if url and (not_before is None or now >= not_before):
        _delete_at_twilio(session, services, attachment_id, url, now)
    elif not url:
        _drop_source(session, attachment_id)
    if age > GIVE_UP_AFTER and _source_kept(session, attachment_id):
        _drop_source(session, attachment_id)
        log.error(
            "attachment %s: Twilio refused to delete its media for %s; delete the message's "
            "media in the Twilio console",
            attachment_id,
            GIVE_UP_AFTER,
        )
    return status


def retry_at(services: Services, attachment_id: str, prefix: str = _RETRY_KEY) -> datetime | None:
    """When Twilio may be asked for this attachment again; None when there is no wait."""
    try:
        raw = services.redis.hget(prefix + attachment_id, "not_before")
    except (RedisError, OSError):
        return None  # without Redis the job does not run either; the sweeper brings it back
    if raw is None:
        return None
    return datetime.fromtimestamp(float(raw), UTC)


def _back_off(
    services: Services, attachment_id: str, now: datetime, prefix: str = _RETRY_KEY
) -> None:
    key = prefix + attachment_id
    try:
        attempts = int(services.redis.hincrby(key, "attempts", 1))
        wait = min(RETRY_FIRST * 2 ** min(attempts - 1, 16), RETRY_MAX)
        services.redis.hset(key, "not_before", str((now + wait).timestamp()))
        services.redis.expire(key, GIVE_UP_AFTER + RETRY_MAX)
    except (RedisError, OSError) as e:
        log.warning("attachment %s: backoff not recorded (%s)", attachment_id, type(e).__name__)


def _forget(services: Services, attachment_id: str, prefix: str = _RETRY_KEY) -> None:
    with contextlib.suppress(RedisError, OSError):  # else the key expires on its own
        services.redis.delete(prefix + attachment_id)


def _delete_at_twilio(
    session: Session, services: Services, attachment_id: str, url: str, now: datetime
) -> None:
    """Ask Twilio to forget the media, then the URL; a failure is logged and tried again later
    (the status stays as it is)."""
    try:
        notifier.delete_media(services.settings, url)
    except notifier.MediaError as e:
        # Never the URL: it names the message whose logs hold the student's number.
        if e.final:  # not Twilio's URL, or a refusal that will not change: nothing to retry
            log.warning("attachment %s: media not deleted at Twilio (%s)", attachment_id, e.reason)
            _drop_source(session, attachment_id)
        else:
            log.warning(
                "attachment %s: media not deleted at Twilio (%s); will retry",
                attachment_id,
                e.reason,
            )
            _back_off(services, attachment_id, now, _DELETE_KEY)
    else:
        log.info("attachment %s: media deleted at Twilio", attachment_id)
        _forget(services, attachment_id, _DELETE_KEY)
        _drop_source(session, attachment_id)


def _drop_source(session: Session, attachment_id: str) -> None:
    """The URL names the message whose Twilio logs hold the student's number: once Twilio has
    forgotten the media (or it was never Twilio's), nothing here needs it."""
    session.execute(
        update(Attachment).where(Attachment.id == attachment_id).values({Attachment._source: None})
    )
    session.commit()


def _source_kept(session: Session, attachment_id: str) -> bool:
    kept = session.scalar(
        select(Attachment._source.is_not(None)).where(Attachment.id == attachment_id)
    )
    session.rollback()
    return bool(kept)


def _store(
    session: Session,
    services: Services,
    attachment_id: str,
    data: bytes,
    limits: sandbox.Limits | None = None,
) -> str:
    """Clean downloaded bytes in the sandbox and seal them, if nobody did it meanwhile."""
    try:
        # Before the row lock: decoding a large photo takes a moment. GPS, phone model and
        # time in EXIF/XMP must never be sealed with the picture, nor an author with a PDF
        # (a HEIC becomes a JPEG and is stored under that type).
        cleaned = sandbox.clean(data, limits)
    except sandbox.Refused as e:
        if _try_again_later(services, attachment_id, e.reason):
            return "pending"  # downloaded again then: Twilio keeps the media until it is stored
        return _finish(session, attachment_id, "rejected", e.reason)
    _forget(services, attachment_id, _TIMEOUTS_KEY)
    return _seal_clean(session, services, attachment_id, cleaned, expect="pending", rekey=False)


def _seal_clean(
    session: Session,
    services: Services,
    attachment_id: str,
    cleaned: sandbox.Cleaned,
    *,
    expect: str,
    rekey: bool,
) -> str:
    """Seal the sandbox's clean file; with `rekey`, under a new data key, the old one shredded."""
    att = _lock(session, attachment_id)
    if att is None or att.status != expect:
        session.rollback()
        return att.status if att is not None else "missing"
    old_key = att.data_key_id if rekey else None
    if rekey:
        att.data_key = services.vault.new_data_key()
    att.content_type = cleaned.content_type
    att.size = len(cleaned.data)
    services.vault.put(att, "content", cleaned.data)
    att.status = "stored"  # an MMS's URL stays until Twilio has forgotten the media
    audit.record(
        session,
        "system",
        "attachment.stored",
        att.tip_id,
        attachment_id=att.id,
        content_type=cleaned.content_type,
    )
    session.flush()
    if old_key is not None:
        session.execute(delete(DataKey).where(DataKey.id == old_key))
    session.commit()
    log.info("attachment %s stored (%s, %d bytes)", attachment_id, cleaned.content_type, att.size)
    return "stored"


def _download(
    session: Session, services: Services, attachment_id: str, url: str, age: timedelta
) -> notifier.Media | str:
    """The media, or the status the attachment was left in."""
    try:
        return notifier.fetch_media(services.settings, url, MAX_BYTES)
    except notifier.MediaError as e:
        if e.reason == "size":  # a Twilio URL that served too much: no use keeping it there
            status = _finish(session, attachment_id, "rejected", e.reason)
            if status == "rejected":
                _delete_at_twilio(session, services, attachment_id, url, utcnow())
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


def _finish(
    session: Session, attachment_id: str, status: str, reason: str, expect: str = "pending"
) -> str:
    """Record a final status other than stored; the sweeper stops re-enqueueing it.

    A web upload's raw bytes (`expect` CHECKING) are shredded with their data key: refused
    means nobody ever opens them.
    """
    att = _lock(session, attachment_id)
    if att is None or att.status != expect:
        session.rollback()
        return att.status if att is not None else "missing"
    att.status = status
    shred = att.data_key_id if expect == CHECKING else None
    if shred is not None:
        att._content = None
        att.data_key = None
    audit.record(
        session, "system", f"attachment.{status}", att.tip_id, attachment_id=att.id, reason=reason
    )
    session.flush()
    if shred is not None:
        session.execute(delete(DataKey).where(DataKey.id == shred))
    session.commit()
    log.info("attachment %s %s (%s)", attachment_id, status, reason)
    return status
