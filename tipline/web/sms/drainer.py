"""The web process drains its host's spool once the database answers a text again.

Texts spooled during an outage are on this host's disk only (`tipline.intake.outage`), so
the web process that took them stores them too: after a text was stored normally, a
background thread drains the spool (the worker's sweeper does as well, when it runs on the
same host). The drain lock keeps it to one process at a time; looking costs one directory
listing, at most every LOOK_EVERY seconds.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from tipline.extensions import db, dbsession
from tipline.intake import spooldrain
from tipline.platform.services import Services

log = logging.getLogger(__name__)

LOOK_EVERY = 5.0
_STATE = "tipline.spool_drainer"


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.looked = float("-inf")


def _state(app: Flask) -> _State:
    state = app.extensions.setdefault(_STATE, _State())
    assert isinstance(state, _State)  # noqa: S101 - only this module sets it
    return state


def spooled(app: Flask) -> None:
    """This process just spooled a text: the next one stored looks at the spool at once."""
    state = _state(app)
    with state.lock:
        state.looked = float("-inf")


def after_success(app: Flask, svc: Services) -> threading.Thread | None:
    """Start a drain in the background if the spool holds texts; the thread, when started."""
    state = _state(app)
    now = svc.clock()
    with state.lock:
        if now - state.looked < LOOK_EVERY or (state.thread and state.thread.is_alive()):
            return None
        state.looked = now
        if not svc.spool.size():
            return None
        state.thread = threading.Thread(
            target=drain_now, args=(app, svc), name="spool-drain", daemon=True
        )
        state.thread.start()
        return state.thread


def drain_now(app: Flask, svc: Services) -> spooldrain.Drained:
    """Drain in an app context of its own (a thread, or a command)."""
    with app.app_context():
        try:
            return spooldrain.drain(dbsession(), svc)
        except Exception:
            log.exception("spool drain failed; the worker or the next text tries again")
            return spooldrain.Drained(held=False)
        finally:
            db.session.remove()
