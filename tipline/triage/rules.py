"""Loading and validating triage rules: the packaged files plus a district's `[triage]` table.

A rules file (`rules/en.toml`, `rules/es.toml`, or a district's own file) holds:

    language = "en"                 # optional: this file's stopwords detect this language
    stopwords = ["the", "and"]      # frequent words of that language (language detection)
    negators = ["not", "never"]     # words that negate what follows (within four words)
    [vocab]                         # named word lists, used in phrases as {name}
    firearm = ["gun", "pistol"]
    [aliases]                       # one word -> its canonical spelling (slang, misspellings)
    tmrw = "tomorrow"
    [[rule]]                        # a trigger: what the tip is about
    id = "weapon.firearm"; category = "weapon"; severity = "high"; max = "critical"
    reason = "a gun is mentioned"; phrases = ["{firearm}"]
    [[context]]                     # raises, lowers or caps the severity of triggers
    id = "time.future"; effect = "raise"; weight = 1; reason = "..."; phrases = ["tomorrow"]
    # also: cap = "high", unless = [ids or tags], tag, applies = [categories or rule ids],
    # scope = "message" | "sentence", negatable
    [[benign]]                      # harmless idioms that hide the triggers they overlap
    id = "idiom.killed_it"; reason = "..."; phrases = ["killed it"]

A district's `[triage]` table takes the same keys (except `language`/`stopwords`) plus:
`files` (more rules files, same format, relative to `base_dir`), `places` (building names and
local place words that count as a place), and `disable` (ids of rules to switch off). An entry
whose id already exists replaces it. Unknown keys are errors, so a typo never passes silently.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tipline.triage.verdict import CATEGORIES, LEVELS, TriageRulesError

__all__ = ["DEFAULT_FILES", "Entry", "RawRules", "load_raw_defaults", "merge_table"]

DEFAULT_FILES = ("en.toml", "es.toml")
KINDS = ("rule", "context", "benign")
EFFECTS = ("raise", "lower", "cap", "hedge")
SCOPES = ("overlap", "sentence")
_ID = re.compile(r"[a-z0-9][a-z0-9_.\-]*")
_COMMON = {"id": str, "reason": str, "phrases": list, "patterns": list}
_FIELDS: dict[str, dict[str, Any]] = {
    "rule": {
        **_COMMON,
        "category": str,
        "severity": str,
        "max": str,
        "weight": (int, float),
        "negatable": bool,
        "ambiguous": bool,
    },
    "context": {
        **_COMMON,
        "effect": str,
        "weight": (int, float),
        "cap": str,
        "unless": list,
        "tag": str,
        "applies": list,
        "negatable": bool,
        "scope": str,
    },
    "benign": {**_COMMON, "scope": str, "categories": list},
}
_KIND_NAMES: dict[Any, str] = {
    str: "a string",
    list: "a list",
    bool: "true or false",
    (int, float): "a number",
}
_FILE_KEYS = {"language", "stopwords", "negators", "vocab", "aliases", *KINDS}
_DISTRICT_KEYS = {"files", "places", "disable", "negators", "vocab", "aliases", *KINDS}


@dataclass
class Entry:
    """One validated rule, context or benign table, and where it came from (for errors)."""

    kind: str
    table: dict[str, Any]
    where: str


@dataclass
class RawRules:
    """Rules gathered from files and tables, validated but not compiled yet."""

    vocab: dict[str, list[str]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    negators: set[str] = field(default_factory=set)
    stopwords: dict[str, set[str]] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)

    def copy(self) -> RawRules:
        return RawRules(
            vocab={k: list(v) for k, v in self.vocab.items()},
            aliases=dict(self.aliases),
            negators=set(self.negators),
            stopwords={k: set(v) for k, v in self.stopwords.items()},
            entries={k: Entry(e.kind, dict(e.table), e.where) for k, e in self.entries.items()},
        )


def load_raw_defaults() -> RawRules:
    """The packaged English and Spanish rules, validated."""
    raw = RawRules()
    folder = resources.files("tipline.triage").joinpath("rules")
    for name in DEFAULT_FILES:
        text = folder.joinpath(name).read_text(encoding="utf-8")
        _merge_file(
            raw, _parse_toml(text, f"tipline/triage/rules/{name}"), f"tipline/triage/rules/{name}"
        )
    return raw


def merge_table(
    raw: RawRules, table: Mapping[str, Any], source: str, base_dir: Path | None
) -> None:
    """Merge a district's `[triage]` table into `raw`, validating every key."""
    if not isinstance(table, Mapping):
        raise TriageRulesError(f"{source}: must be a table")
    _check_keys(table, _DISTRICT_KEYS, source)
    for i, name in enumerate(_str_list(table.get("files", []), f"{source}: files")):
        path = Path(name)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TriageRulesError(f"{source}: files[{i}]: cannot read {path}: {e}") from None
        _merge_file(raw, _parse_toml(text, str(path)), str(path), district=True)
    _merge_common(raw, table, source)
    places = _str_list(table.get("places", []), f"{source}: places")
    if places:
        place = raw.entries.get("place")
        if place is None or place.kind != "context":
            raise TriageRulesError(f"{source}: places: no context with id 'place' to extend")
        place.table["phrases"] = [*place.table.get("phrases", []), *places]
    for i, rule_id in enumerate(_str_list(table.get("disable", []), f"{source}: disable")):
        if raw.entries.pop(rule_id, None) is None:
            raise TriageRulesError(f"{source}: disable[{i}]: no rule with id {rule_id!r}")


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TriageRulesError(f"{source}: invalid TOML: {e}") from None


def _merge_file(
    raw: RawRules, doc: Mapping[str, Any], source: str, *, district: bool = False
) -> None:
    _check_keys(doc, _FILE_KEYS - ({"language", "stopwords"} if district else set()), source)
    language = doc.get("language")
    if language is not None:
        if not isinstance(language, str) or not _ID.fullmatch(language):
            raise TriageRulesError(f"{source}: language: must be a short code like 'en'")
        words = _str_list(doc.get("stopwords", []), f"{source}: stopwords")
        raw.stopwords.setdefault(language, set()).update(w.casefold() for w in words)
    elif "stopwords" in doc:
        raise TriageRulesError(f"{source}: stopwords: needs a 'language' key in the same file")
    _merge_common(raw, doc, source)


def _merge_common(raw: RawRules, doc: Mapping[str, Any], source: str) -> None:
    raw.negators.update(_str_list(doc.get("negators", []), f"{source}: negators"))
    vocab = doc.get("vocab", {})
    if not isinstance(vocab, Mapping):
        raise TriageRulesError(f"{source}: vocab: must be a table of word lists")
    for name, words in vocab.items():
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise TriageRulesError(
                f"{source}: vocab.{name}: name must be lowercase letters, digits and underscores"
            )
        raw.vocab.setdefault(name, []).extend(_str_list(words, f"{source}: vocab.{name}"))
    aliases = doc.get("aliases", {})
    if not isinstance(aliases, Mapping):
        raise TriageRulesError(f'{source}: aliases: must be a table of word = "canonical"')
    for word, canonical in aliases.items():
        where = f"{source}: aliases.{word}"
        if not isinstance(canonical, str) or not canonical.strip():
            raise TriageRulesError(f"{where}: must be a non-empty string")
        if len(word.split()) != 1:
            raise TriageRulesError(f"{where}: an alias replaces one word; use a rule for phrases")
        raw.aliases[word] = canonical
    for kind in KINDS:
        items = doc.get(kind, [])
        if not isinstance(items, list):
            raise TriageRulesError(f"{source}: {kind}: must be an array of tables ([[{kind}]])")
        for i, table in enumerate(items):
            entry = _validate_entry(kind, table, f"{source}: {kind}[{i}]")
            raw.entries[entry.table["id"]] = entry


def _validate_entry(kind: str, table: Any, where: str) -> Entry:
    if not isinstance(table, Mapping):
        raise TriageRulesError(f"{where}: must be a table")
    rule_id = table.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise TriageRulesError(
            f"{where}: field 'id': required, lowercase letters, digits, "
            f"'.', '_' or '-' (got {rule_id!r})"
        )
    where = f"{where} ({rule_id!r})"
    fields = _FIELDS[kind]
    _check_keys(table, set(fields), where, what="field")
    for name, expected in fields.items():
        value = table.get(name)
        if value is not None and (
            not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool)
        ):
            raise TriageRulesError(
                f"{where}: field {name!r}: must be {_KIND_NAMES[expected]} "
                f"(got {type(value).__name__})"
            )
    if not isinstance(table.get("reason"), str) or not table["reason"].strip():
        raise TriageRulesError(f"{where}: field 'reason': required, the words shown to staff")
    phrases = _str_list(table.get("phrases", []), f"{where}: field 'phrases'")
    patterns = _str_list(table.get("patterns", []), f"{where}: field 'patterns'")
    if not phrases and not patterns:
        raise TriageRulesError(f"{where}: needs at least one of 'phrases' or 'patterns'")
    validate = {"rule": _validate_rule, "context": _validate_context, "benign": _validate_benign}
    validate[kind](table, where)
    return Entry(kind, dict(table), where)


def _validate_rule(table: Mapping[str, Any], where: str) -> None:
    _choice(table, "category", CATEGORIES, where, required=True)
    _choice(table, "severity", tuple(LEVELS), where, required=True)
    _choice(table, "max", tuple(LEVELS), where)
    if "max" in table and LEVELS[table["max"]] < LEVELS[table["severity"]]:
        raise TriageRulesError(f"{where}: field 'max': lower than 'severity'")
    if table.get("weight", 1) <= 0:
        raise TriageRulesError(f"{where}: field 'weight': must be greater than 0")


def _validate_context(table: Mapping[str, Any], where: str) -> None:
    effect = _choice(table, "effect", EFFECTS, where, required=True)
    _choice(table, "scope", ("message", "sentence"), where)
    if effect == "cap":
        _choice(table, "cap", tuple(LEVELS), where, required=True)
    elif "cap" in table:
        raise TriageRulesError(f"{where}: field 'cap': only for effect = \"cap\"")
    if effect in ("raise", "lower") and table.get("weight", 1) < 0:
        raise TriageRulesError(f"{where}: field 'weight': must not be negative")
    for name in _str_list(table.get("applies", []), f"{where}: field 'applies'"):
        if name not in CATEGORIES and "." not in name:
            raise TriageRulesError(
                f"{where}: field 'applies': unknown category {name!r} "
                f"(one of {', '.join(CATEGORIES)}, or a rule id)"
            )
    _str_list(table.get("unless", []), f"{where}: field 'unless'")


def _validate_benign(table: Mapping[str, Any], where: str) -> None:
    _choice(table, "scope", SCOPES, where)
    for category in _str_list(table.get("categories", []), f"{where}: field 'categories'"):
        if category not in CATEGORIES:
            raise TriageRulesError(
                f"{where}: field 'categories': unknown category "
                f"{category!r} (one of {', '.join(CATEGORIES)})"
            )


def _choice(
    table: Mapping[str, Any],
    name: str,
    allowed: Sequence[str],
    where: str,
    *,
    required: bool = False,
) -> str | None:
    value = table.get(name)
    if value is None and not required:
        return None
    if value not in allowed:
        raise TriageRulesError(
            f"{where}: field {name!r}: must be one of {', '.join(allowed)} (got {value!r})"
        )
    return str(value)


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, what: str = "key") -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise TriageRulesError(
            f"{where}: unknown {what} {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TriageRulesError(f"{where}: must be a list of non-empty strings")
    return list(value)
