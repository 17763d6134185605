"""What running processes read of the district, cheaply; the database stays the truth.

Only `tipline init` changes schools, staff, shifts and policies, yet every webhook and every
escalation step reads them. Two copies per process, each checked its own way:

- `current_district`: the config dataclasses rebuilt from the database (`sync.district_from_db`)
  for escalation, cached per content: one query fetches every roster row as text, and a
  changed row means a rebuild.
- `lookups(svc)`: active schools by number and active staff phones for intake, at most `TTL`
  seconds old; a staff match is always confirmed against the database.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import String, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from tipline.db import Base
from tipline.district.config import DistrictConfig
from tipline.district.oncall import Override
from tipline.district.sync import district_from_db
from tipline.models import OnCallOverride, School, Staff
from tipline.platform.services import Services

_DISTRICTS: dict[str, DistrictConfig] = {}
_DISTRICT_MEMO = "tipline.district"
ROSTER_TABLES = ("school", "staff", "staff_school", "shift", "policy")


@functools.cache
def _fingerprint_query() -> Any:
    """Every row of the roster tables as one line of text, in one round trip."""
    selects = []
    for name in ROSTER_TABLES:
        table = Base.metadata.tables[name]
        line: Any = literal(table.name, String)
        for column in table.columns:
            line = line + "|" + func.coalesce(cast(column, String), "")
        selects.append(select(line))
    return union_all(*selects)


def current_district(session: Session) -> DistrictConfig:
    """`district_from_db`, cached per content: the database stays the source of truth, checked
    with one query per call."""
    memo = session.info.get(_DISTRICT_MEMO)
    if memo is not None and memo[0] is session.get_transaction():
        cached: DistrictConfig = memo[1]
        return cached  # checked already in this transaction
    rows = session.scalars(_fingerprint_query()).all()
    key = hashlib.sha256("\n".join(sorted(str(r) for r in rows)).encode()).hexdigest()
    found = _DISTRICTS.get(key)
    if found is None:
        found = district_from_db(session)
        _DISTRICTS.clear()  # one district per database; keep only the newest
        _DISTRICTS[key] = found
    session.info[_DISTRICT_MEMO] = (session.get_transaction(), found)
    return found


def overrides_at(session: Session, school_id: int, now: datetime) -> list[Override]:
    """The school's on-call overrides that have not ended by `now`."""
    rows = session.scalars(
        select(OnCallOverride).where(
            OnCallOverride.school_id == school_id, OnCallOverride.end > now
        )
    ).all()
    return [Override(o.school.slug, o.staff.key, o.duty, o.start, o.end) for o in rows]


TTL = 5.0  # seconds a change made by `tipline init` may take to reach a running web worker


@dataclass(frozen=True)
class SchoolInfo:
    """What intake needs of an active school, detached from any session."""

    id: int
    slug: str
    name: str
    monitored: str | None
    followup_window_s: int
    break_glass: bool = False


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
                row.id, row.slug, row.name, row.monitored, row.followup_window_s, row.break_glass
            )
            for row in session.execute(
                select(
                    School.id,
                    School.slug,
                    School.name,
                    School.monitored,
                    School.followup_window_s,
                    School.break_glass,
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
