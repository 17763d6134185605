"""What a tip names: its people, places, weapon classes and kinds of harm, as students write them.

Pure code over the tip's text and the triage rules (the worker calls it with the decrypted
text; nothing here is stored). `incidents` turns these facts into keyed hashes and decides,
from the pairs two tips share, whether they are one event.

People: a first name in any case where it acts as one ("jaylen just showed me", "saw Marcus"),
a capitalized word that the rules do not know, or a name after "named" or "Mr.". Places: the
rules' place words with the words students add to tell two apart ("B hall", "east stairwell",
"the bus loop", "portable 4"), and each school's own `places` from the configuration file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tipline.triage import RuleSet

# A tip naming more than this many of one kind is a list (a prank, a rumor roll-call), not
# one event: it gets an incident of its own and lends no keys to others.
LIST_LIMITS = {"person": 3, "place": 2, "weapon": 2}

WEAPON_CLASS = {
    "weapon.firearm": "firearm",
    "weapon.slang": "firearm",
    "weapon.blade": "blade",
    "weapon.explosive": "explosive",
    "weapon.blunt": "blunt",
    "weapon.generic": "weapon",
}
HARM = {
    "violence.fight": "fight",
    "violence.assault": "fight",
    "violence.assault_now": "fight",
    "violence.beat_threat": "fight",
    "violence.arson": "fire",
    "other.fire": "fire",
    "self_harm.overdose_now": "overdose",
}
_HARM_WORDS = {
    "fire": "fire",
    "smoke": "fire",
    "burning": "fire",
    "overdose": "overdose",
    "overdosed": "overdose",
    "overdosing": "overdose",
    "od": "overdose",
    "oding": "overdose",
}
NOW_RULES = frozenset({"time.now", "emergency.now", "weapon.attack_now", "abuse.now"})
HURT_RULES = frozenset({"wounded", "injury", "emergency.now", "self_harm.overdose_now"})

_SAME_PLACE = {"lunchrom": "cafeteria", "restrom": "bathrom", "bathrooms": "bathrom"}
# fmt: off
# Words that tell one place from another of its kind: "B hall", "east stairwell".
_PLACE_BEFORE = frozenset({
    "north", "south", "east", "west", "upper", "lower", "main", "front", "back", "side",
    "new", "old", "top", "bottom", "girls", "boys", "mens", "womens", "staff", "senior",
    "junior", "band", "choir", "art", "gym", "science", "math", "music"
})
# Words that finish a place the rules matched by its first word: "bus" + "loop".
_PLACE_AFTER = frozenset({
    "lop", "stop", "lot", "rom", "hal", "halway", "wing", "stairs", "stairwel", "field",
    "entrance"
})
_NUMBERED = re.compile(r"^(?:\d{1,4}[a-z]?|[a-z])$")

_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_SENTENCE = re.compile(r"[.!?\n]+")
# What follows a name used as one: "jaylen just showed", "marcus has", "devon is bringing".
_ACTS = frozenset({
    "has", "had", "have", "is", "was", "just", "says", "said", "showed", "shows", "brought",
    "brings", "bringing", "pulled", "pulls", "got", "gets", "wants", "told", "tells",
    "keeps", "kept", "threatened", "threatens", "stabbed", "shot", "punched", "hit", "hits",
    "took", "pushed", "texted", "posted", "slapped", "attacked", "jumped", "beat", "beats",
    "pointed", "wrote", "will", "and", "wont", "cant", "isnt"
})
# What comes before a name: "saw marcus", "named tyler", "with devon".
_BEFORE = frozenset({
    "saw", "named", "called", "told", "with", "and", "by", "from"
})
_NOT_NAMES = frozenset({
    "omg", "guys", "lol", "bro", "yall", "pls", "plz", "asap", "ok", "okay", "someone",
    "somebody", "everyone", "everybody", "anyone", "anybody", "nobody", "kid", "kids",
    "guy", "girl", "boy", "dude", "student", "students", "teacher", "teachers", "he", "she",
    "they", "it", "this", "that", "there", "who", "which", "what", "i", "we", "you", "my",
    "his", "her", "their", "friend", "friends", "man", "lady", "person", "people", "sub",
    "mom", "dad", "brother", "sister", "cousin", "one", "also", "then", "now", "here",
    "why", "how", "where", "u", "ur", "im", "hes", "shes", "theyre", "its", "dont",
    "please", "help", "yes", "no", "idk", "tbh", "fr", "ngl", "bc", "cuz"
})
# fmt: on


@dataclass(frozen=True)
class Facts:
    """The event a text describes, in memory only (its words are never stored)."""

    people: frozenset[str]
    places: frozenset[str]
    weapons: frozenset[str]
    harms: frozenset[str]
    now: bool
    hurt: bool

    @property
    def is_list(self) -> bool:
        """Names too many of one kind to be one event."""
        return (
            len(self.people) > LIST_LIMITS["person"]
            or len(self.places) > LIST_LIMITS["place"]
            or len(self.weapons) > LIST_LIMITS["weapon"]
        )

    def keys(self) -> set[str]:
        """`kind:value` keys; a list lends none."""
        if self.is_list:
            return set()
        return (
            {"person:" + p for p in self.people}
            | {"place:" + p for p in self.places}
            | {"weapon:" + w for w in self.weapons}
            | {"harm:" + h for h in self.harms}
        )


def facts(text: str, rules: RuleSet, places: Iterable[str] = ()) -> Facts:
    """The people, places, weapons, harms and urgency `text` names; `places` are a school's own."""
    norm = rules.normalizer.normalize(text)
    tokens = norm.text.split()
    found_places: set[str] = set()
    weapons: set[str] = set()
    harms: set[str] = set()
    people: set[str] = set()
    now = hurt = False
    for hit in rules.scan(norm):
        rid = hit.rule.id
        if rid == "place":
            found_places.add(_place(norm.text, hit.start, hit.end))
        elif rid in WEAPON_CLASS:
            weapons.add(WEAPON_CLASS[rid])
        elif rid == "person":
            following = norm.text[hit.end :].replace(" .", "").split()
            if following and following[0].isalpha() and len(following[0]) > 1:
                people.add(following[0])
        if rid in HARM:
            harms.add(HARM[rid])
        now = now or rid in NOW_RULES
        hurt = hurt or rid in HURT_RULES
    harms.update(_HARM_WORDS[t] for t in tokens if t in _HARM_WORDS)
    padded = f" {norm.text} "
    for phrase in places:
        wanted = " ".join(rules.normalizer.normalize(phrase).text.replace(" .", "").split())
        if wanted and f" {wanted} " in padded:
            found_places = {p for p in found_places if p not in wanted}
            found_places.add(wanted)
    people |= _names(text, rules)
    return Facts(
        frozenset(people),
        frozenset(_SAME_PLACE.get(p, p) for p in found_places),
        frozenset(weapons),
        frozenset(harms),
        now,
        hurt,
    )


def _place(text: str, start: int, end: int) -> str:
    """The place hit with the words that tell it apart: "b hal", "east stairwel", "bus lop"."""
    words = text[start:end].split()
    before = text[:start].split()
    after = text[end:].split()
    if before and (before[-1] in _PLACE_BEFORE or (len(before[-1]) == 1 and before[-1] != "a")):
        words.insert(0, before[-1])
    if after and (after[0] in _PLACE_AFTER or _NUMBERED.match(after[0])) and after[0] != "a":
        words.append(after[0])
    return " ".join(words)


def _names(text: str, rules: RuleSet) -> set[str]:
    """First names as students write them, in any case, normalized to lower case."""
    known = rules.normalizer.lexicon
    stop = set().union(*rules.stopwords.values()) if rules.stopwords else set()
    out: set[str] = set()
    for sentence in _SENTENCE.split(text):
        words = [m.group(0) for m in _WORD.finditer(sentence)]
        previous_was_name = False
        for i, raw in enumerate(words):
            word = raw.lower().replace("'", "")
            norm = rules.normalizer.word(raw)
            if (
                len(word) < 3
                or word in _NOT_NAMES
                or word in stop
                or norm in known
                or norm in stop
                or " " in norm
            ):
                previous_was_name = False
                continue
            after = words[i + 1].lower().replace("'", "") if i + 1 < len(words) else ""
            before = words[i - 1].lower() if i else ""
            capital = raw[0].isupper() and not raw.isupper()
            acts = after in _ACTS or after == "s"
            if (capital and (i > 0 or acts)) or acts or before in _BEFORE:
                if not previous_was_name:  # "Jake Miller" is one person
                    out.add(word)
                previous_was_name = True
            else:
                previous_was_name = False
    return out
