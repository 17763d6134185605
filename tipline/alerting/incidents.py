"""Storm control: many tips about one event become one incident, paged once with a count.

Two tips are about the same event when they come to the same school within the window and
name the same place, person or weapon. A tip that adds one of those the incident did not have,
or is critical while the incident is not, makes the incident page again. Two events at once
share no key, so each pages on its own.

Keys come from the tip text, decrypted here in the worker only, and are stored as keyed
hashes (`place:<hmac>`): the database never holds the words, and the hashes cannot be
reversed without the lookup key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.models import Incident, IncidentTip, Message, Tip
from tipline.triage import RuleSet
from tipline.triage.verdict import LEVELS
from tipline.vault.keyring import Vault

WINDOW = timedelta(minutes=10)
KINDS = ("weapon", "person", "place")
_WEAPON_CLASS = {
    "weapon.firearm": "firearm",
    "weapon.slang": "firearm",
    "weapon.blade": "blade",
    "weapon.explosive": "explosive",
    "weapon.blunt": "blunt",
    "weapon.generic": "weapon",
}
_SAME_PLACE = {"lunchrom": "cafeteria", "restrom": "bathrom", "bathrooms": "bathrom"}
_NAME = re.compile(r"(?<![\w'])([A-Z][a-z]{2,})\b")
_NOT_NAMES = frozenset({"omg", "guys", "lol", "bro", "yall", "pls", "plz", "asap", "ok", "okay"})
HASH_PURPOSE = "incident"  # its own HKDF subkey: these hashes never match a limiter's or a phone's


def event_keys(text: str, rules: RuleSet) -> set[str]:
    """`kind:value` keys (in memory only) for the places, people and weapons a text names."""
    norm = rules.normalizer.normalize(text)
    keys: set[str] = set()
    for hit in rules.scan(norm):
        rid = hit.rule.id
        words = norm.text[hit.start : hit.end]
        if rid == "place":
            keys.add("place:" + _SAME_PLACE.get(words, words))
        elif rid in _WEAPON_CLASS:
            keys.add("weapon:" + _WEAPON_CLASS[rid])
        elif rid == "person":
            following = norm.text[hit.end :].replace(" .", "").split()
            if following and following[0].isalpha() and len(following[0]) > 1:
                keys.add("person:" + following[0])
    known = rules.normalizer.lexicon
    stop = set().union(*rules.stopwords.values()) if rules.stopwords else set()
    for sentence in re.split(r"[.!?\n]+", text):
        for m in _NAME.finditer(sentence):
            if not sentence[: m.start()].strip():
                continue  # the first word of a sentence is capitalized anyway
            word = rules.normalizer.word(m.group(1))
            if word not in known and word not in stop and word not in _NOT_NAMES:
                keys.add("person:" + word)
    return keys


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
    """Put the tip into an incident (a new one, or a recent one sharing a key); caller commits.

    Callers serialize this per school (see routing), so two tips of one event cannot both
    open an incident.
    """
    keys = hashed(session, vault, event_keys(tip_texts(session, vault, tip), rules))
    member = session.get(IncidentTip, tip.id)
    incident = session.get(Incident, member.incident_id) if member else None
    if incident is None:
        for candidate in session.scalars(
            select(Incident)
            .where(Incident.school_id == tip.school_id, Incident.last_tip_at >= now - window)
            .order_by(Incident.last_tip_at.desc())
        ):
            if keys & set(candidate.keys):
                incident = candidate
                break
    if incident is None:
        incident = Incident(
            school_id=tip.school_id,
            opened_at=now,
            last_tip_at=now,
            tip_count=1,
            severity=tip.severity,
            category=tip.category,
            keys=sorted(keys),
        )
        session.add(incident)
        session.flush()
        session.add(IncidentTip(tip_id=tip.id, incident_id=incident.id, added_at=now, paged=True))
        return Placement(incident, True, "new tip", None)

    added = sorted({k.partition(":")[0] for k in keys - set(incident.keys)}, key=KINDS.index)
    raised = _more_severe(tip.severity, incident.severity)
    critical_now = tip.severity == "critical" and incident.severity != "critical"
    row = member
    if row is None:
        incident.tip_count += 1
        row = IncidentTip(tip_id=tip.id, incident_id=incident.id, added_at=now)
        session.add(row)
    incident.last_tip_at = now
    incident.keys = sorted(set(incident.keys) | keys)
    if raised:
        incident.severity, incident.category = tip.severity, tip.category
    # A follow-up that raised its own tip's severity pages again too (routing runs again).
    page = bool(added) or critical_now or (member is not None and raised)
    reasons = [f"adds a {kind}" if kind != "person" else "names a person" for kind in added]
    if critical_now:
        reasons.insert(0, "now critical")
    elif raised and member is not None:
        reasons.insert(0, f"now {tip.severity}")
    if page:
        row.paged = True
    return Placement(incident, page, ", ".join(reasons) or "update", incident.alert_id)
