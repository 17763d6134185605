"""Deleting messages at Twilio once they are final, driven by the worker's sweeper.

Twilio keeps every message (both numbers and the body) until it is deleted. What is owed is
kept in the database (`tipline.outbox.forget`), not in Redis: each pass of the sweeper (one
worker at a time, under its lease) asks Twilio about a few messages whose turn has come. A
sweeper hook rather than a JobKind because nothing here is urgent and the turn of each message
is already a row with a time: a job per retry would only copy that time into Redis, where a
flush could lose it, and the sweeper would have to re-derive it anyway.

Bounded and quiet: at most BATCH requests a pass, each with a short timeout; the first sign
of an outage (429, 5xx, no answer) ends the pass and puts everything due off for a while; a
refusal is retried with a growing wait (`forget.later`) and logged at debug or info, with one
warning when a message is given up after `forget.GIVE_UP_AFTER`. A 404 counts as deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from tipline.outbox import forget, notifier
from tipline.settings import Settings
from tipline.vault.keyring import Vault

log = logging.getLogger(__name__)

BATCH = 10  # requests to Twilio per sweeper pass (every few seconds)


def run(session: Session, vault: Vault, settings: Settings, now: datetime) -> int:
    """Ask Twilio to delete the messages whose turn has come; how many it has forgotten."""
    if not settings.twilio_enabled:
        return 0  # console mode: nothing was ever at Twilio, nor can it be asked
    forget.lost_callbacks(session, now)
    session.commit()
    deleted = 0
    for item in forget.due(session, vault, now, BATCH):
        if item.sid is None:  # its key is gone: nothing left to ask about
            log.info("twilio forget %s: message id unreadable; dropped", item.id)
            forget.done(session, item.id)
            continue
        try:
            notifier.delete_message(settings, item.sid)
        except notifier.DeleteError as e:
            wait = forget.later(session, item, now)
            if wait is None:
                log.warning(
                    "twilio forget %s: Twilio would not delete the message for %s (%s); "
                    "given up, it stays in Twilio's logs until redacted there",
                    item.id,
                    forget.GIVE_UP_AFTER,
                    e.reason,
                )
            else:
                level = logging.DEBUG if e.not_final else logging.INFO
                log.log(level, "twilio forget %s: %s; again in %s", item.id, e.reason, wait)
            if e.outage:
                forget.postpone_due(session, now, wait or forget.RETRY_FIRST)
                break
        else:
            forget.done(session, item.id)
            deleted += 1
    if deleted:
        log.info("deleted %d messages at Twilio", deleted)
    return deleted
