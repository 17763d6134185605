"""Storm control: tips that are clearly about one event become one incident, paged once.

Two tips are one event when, within `WINDOW` of the incident's first tip (a fixed window: a
stream of tips cannot keep an incident open), they share a pair of facts: a place and a kind
of harm (a weapon class, a fight, a fire, an overdose), a place and a person, or a person and
a weapon class. One shared key never merges: thirty texts about guns at thirty places are
thirty events. A tip that names a list of people, places or weapons (`eventkeys.Facts.is_list`)
is an incident of its own and lends no keys. An incident takes at most `MAX_TIPS` tips and
`MAX_KEYS` keys. When in doubt, a tip opens an incident of its own: it pages.

A joining tip pages again when it adds a place, person or weapon, is critical while the
incident is not, says it is happening now or someone is hurt when no tip before did, or is
critical while the incident's alert was already acknowledged or closed.

Keys come from the tip text, decrypted here in the worker only, and are stored as keyed
hashes (`place:<hmac>`): the database never holds the words, and the hashes cannot be
reversed without the lookup key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.alerting.eventkeys import facts
from tipline.models import Alert, Incident, IncidentTip, Message, Tip
from tipline.triage import RuleSet
from tipline.triage.verdict import LEVELS
from tipline.vault.keyring import Vault

WINDOW = timedelta(minutes=10)
MAX_TIPS = 200  # then the next tip opens a new incident (and pages once)
CANDIDATES = 100  # recent incidents a tip is compared with
MAX_KEYS = 40  # ~10 tips naming 4 facts each; past it the incident learns no more keys
KINDS = ("weapon", "person", "place", "harm")
# The pairs of shared facts that make two tips one event (a weapon is a kind of harm).
SAME_EVENT = (
    ({"place"}, {"harm", "weapon"}),
    ({"place"}, {"person"}),
    ({"person"}, {"weapon"}),
)
CLOSED = frozenset({"acked", "resolved", "closed", "canceled"})
_ADDS = {
    "weapon": "adds a weapon",
    "person": "names a person",
    "place": "adds a place",
    "harm": "adds a kind of harm",
}
HASH_PURPOSE = "incident"  # its own HKDF subkey: these hashes never match a limiter's or a phone's


def event_keys(text: str, rules: RuleSet, places: tuple[str, ...] = ()) -> set[str]:
    """`kind:value` keys (in memory only) for the places, people, weapons and harms a text
    names; none for a list."""
    return facts(text, rules, places).keys()


def same_event(shared: set[str]) -> bool:
    """Whether the keys two tips share are a merging pair (see the module docstring)."""
    kinds = {key.partition(":")[0] for key in shared}
    return any(kinds & a and kinds & b for a, b in SAME_EVENT)


def hashed(session: Session, vault: Vault, keys: set[str]) -> set[str]:
    out = set()
    for key in keys:
        kind = key.partition(":")[0]
        out.add(f"{kind}:{vault.lookup_hash(session, HASH_PURPOSE, key)}")
    return out


@dataclass
class Placement:
    """Where a tip went, and whether (and why) it pages."""

    incident: Incident
    page: bool
    reason: str
    previous_alert: str | None  # the incident's alert a new page replaces
    signals: tuple[str, ...] = ()  # "now" and "hurt", as this tip says them


def tip_texts(session: Session, vault: Vault, tip: Tip) -> str:
    """The tip's text and the student's follow-ups (a follow-up can name the weapon)."""
    parts = [vault.get_text(tip, "body") or ""] if tip.data_key else []
    for msg in session.scalars(
        select(Message).where(Message.tip_id == tip.id, Message.direction == "in")
    ):
        parts.append(vault.get_text(msg, "body") or "" if msg.data_key else "")
    return "\n".join(parts)


def _more_severe(a: str, b: str) -> bool:
    return LEVELS.get(a, 0) > LEVELS.get(b, 0)


def place_tip(
    session: Session,
    vault: Vault,
    rules: RuleSet,
    tip: Tip,
    now: datetime,
    window: timedelta = WINDOW,
) -> Placement:
    """Put the tip into an incident (a new one, or a recent one it clearly shares an event
    with); caller commits.

    Callers serialize this per school (see routing), so two tips of one event cannot both
    open an incident.
    """
    found = facts(tip_texts(session, vault, tip), rules, tuple(tip.school.places or ()))
    keys = hashed(session, vault, found.keys())
    signals = {name for name, said in (("now", found.now), ("hurt", found.hurt)) if said}
    member = session.get(IncidentTip, tip.id)
    incident = session.get(Incident, member.incident_id) if member else None
    if incident is None and keys:
        # Only the keys of the most recent incidents are read: a burst of distinct events
        # opens hundreds, and reading them all made every tip's routing slower than the last.
        # One older than those is not joined: the tip opens its own and pages (when in doubt,
        # page).
        for candidate_id, candidate_keys in session.execute(
            select(Incident.id, Incident.keys)
            .where(
                Incident.school_id == tip.school_id,
                Incident.opened_at >= now - window,
                Incident.tip_count < MAX_TIPS,
            )
            .order_by(Incident.opened_at.desc())
            .limit(CANDIDATES)
        ):
            if same_event(keys & set(candidate_keys)):
                incident = session.get(Incident, candidate_id)
                break
    if incident is None:
        incident = Incident(
            school_id=tip.school_id,
            opened_at=now,
            last_tip_at=now,
            tip_count=1,
            severity=tip.severity,
            category=tip.category,
            keys=sorted(keys)[:MAX_KEYS],
            signals=sorted(signals),
        )
        session.add(incident)
        session.flush()
        session.add(IncidentTip(tip_id=tip.id, incident_id=incident.id, added_at=now, paged=True))
        reason = "names a list" if found.is_list else "new tip"
        return Placement(incident, True, reason, None, tuple(sorted(signals)))

    known = set(incident.keys)
    added = sorted({k.partition(":")[0] for k in keys - known}, key=KINDS.index)
    news = sorted(signals - set(incident.signals or ()))
    raised = _more_severe(tip.severity, incident.severity)
    critical_now = tip.severity == "critical" and incident.severity != "critical"
    previous = session.get(Alert, incident.alert_id) if incident.alert_id else None
    after_ack = tip.severity == "critical" and previous is not None and previous.status in CLOSED
    row = member
    if row is None:
        incident.tip_count += 1
        row = IncidentTip(tip_id=tip.id, incident_id=incident.id, added_at=now)
        session.add(row)
    incident.last_tip_at = now
    incident.keys = sorted(known | set(sorted(keys - known)[: max(0, MAX_KEYS - len(known))]))
    incident.signals = sorted(set(incident.signals or ()) | signals)
    if raised:
        incident.severity, incident.category = tip.severity, tip.category
    # A follow-up that raised its own tip's severity pages again too (routing runs again).
    page = bool(added or news) or critical_now or after_ack or (member is not None and raised)
    reasons = [_ADDS[kind] for kind in added]
    reasons += ["happening now" if n == "now" else "someone is hurt" for n in news]
    if critical_now:
        reasons.insert(0, "now critical")
    elif raised and member is not None:
        reasons.insert(0, f"now {tip.severity}")
    if after_ack:
        reasons.insert(0, f"new report after {previous.status if previous else 'ack'}")
    if page:
        row.paged = True
    return Placement(
        incident, page, ", ".join(reasons) or "update", incident.alert_id, tuple(sorted(signals))
    )
