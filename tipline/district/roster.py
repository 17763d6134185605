"""The district as the database has it (the source of truth after `tipline init`), cheaply.

`district_from_db` rebuilds and validates the config dataclasses (schools, staff, shifts and
policies; not the triage words, which `Services.rules` owns). Escalation needs the roster on
every step, so the result is cached per content: one query fetches every roster row as text,
and a changed row means a rebuild.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from tipline.db import Base
from tipline.district.config import DistrictConfig
from tipline.district.oncall import Override
from tipline.district.sync import district_from_db
from tipline.models import OnCallOverride

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
