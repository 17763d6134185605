"""Short-lived per-process copies of what only `tipline init` changes: schools and staff phones.

Every inbound text needs the school its number belongs to and whether the sender is staff;
asking the database each time cost a query per webhook. The database stays the truth: a copy
is at most `TTL` seconds old, and a staff match is always confirmed against the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.models import School, Staff
from tipline.platform.services import Services

TTL = 5.0  # seconds a change made by `tipline init` may take to reach a running web worker


@dataclass(frozen=True)
class SchoolInfo:
    """What intake needs of an active school, detached from any session."""

    id: int
    slug: str
    name: str
    monitored: str | None
    followup_window_s: int


@dataclass(frozen=True)
class _Snapshot:
    schools: dict[str, SchoolInfo]  # by SMS number
    staff_phones: frozenset[str]
    taken_at: float


class Lookups:
    """Active schools by number and active staff phones, reloaded when older than `ttl`."""

    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._snapshot: _Snapshot | None = None

    def school(self, session: Session, number: str) -> SchoolInfo | None:
        return self._current(session).schools.get(number)

    def may_be_staff(self, session: Session, phone: str) -> bool:
        """True when the phone belonged to active staff at the last reload (confirm in the DB)."""
        return phone in self._current(session).staff_phones

    def _current(self, session: Session) -> _Snapshot:
        snap, now = self._snapshot, self._clock()
        if snap is None or now - snap.taken_at > self.ttl:
            snap = self._snapshot = self._load(session, now)  # a racing reload is harmless
        return snap

    @staticmethod
    def _load(session: Session, now: float) -> _Snapshot:
        schools = {
            row.sms_number: SchoolInfo(
                row.id, row.slug, row.name, row.monitored, row.followup_window_s
            )
            for row in session.execute(
                select(
                    School.id,
                    School.slug,
                    School.name,
                    School.monitored,
                    School.followup_window_s,
                    School.sms_number,
                ).where(School.active)
            )
        }
        phones = session.scalars(select(Staff.phone).where(Staff.active, Staff.phone.is_not(None)))
        return _Snapshot(schools, frozenset(p for p in phones if p), now)


_BY_APP: WeakKeyDictionary[Services, Lookups] = WeakKeyDictionary()
_LOCK = threading.Lock()


def lookups(svc: Services) -> Lookups:
    """The Lookups of one app's Services (each app, like each test's, has its own)."""
    found = _BY_APP.get(svc)
    if found is None:
        with _LOCK:
            found = _BY_APP.setdefault(svc, Lookups())
    return found
