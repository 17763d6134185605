"""Compiled rules: phrases and patterns become regular expressions over normalized text.

Phrase syntax (words are normalized like tip text, so "kill" also matches "k1ll" and "kiiill"):

    word            a word; `word*` matches any word starting with it ("kill*": kills, killed)
    #               any number ("room #")
    .  ,            a sentence end (the text always ends with one) or a comma ("help .")
    *               any one word ("gonna kill *")
    a|b|c           one of several words in this position
    (a b|c)         one of several word sequences in this position
    [a|b c]         an optional position (alternatives may be several words)
    {name}          any entry of the vocabulary list `name` (entries may be several words)
    ~  or  ~N       up to 3 (or N) other words in between, within the same clause

`patterns` are regular expressions matched against the normalized text (lowercase, no accents,
repeated letters collapsed: write "kil", not "kill"); they may use {name} too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from tipline.triage.model import Hit, Rule, build_rule
from tipline.triage.normalize import Normalized, Normalizer
from tipline.triage.rules import Entry, RawRules, load_raw_defaults, merge_table
from tipline.triage.verdict import TriageRulesError

__all__ = ["RuleSet", "default_rules", "load_rules"]

_MAX_GAP = 12
_CACHE_LIMIT = 20_000
_NOTHING: tuple[tuple[Any, ...], dict[str, tuple[Any, ...]]] = ((), {})  # no phrase starts here
_SLOT = re.compile(r"\[[^\]]*\]|\([^)]*\)|[^\s\[\]()]+")
_BAD_PATTERN_TEXT = re.compile(r"(?<!\\)([a-z])\1|(?<!\\)[A-Z]|[^\x00-\x7f]")


class _Alt(NamedTuple):
    regex: str
    first: str  # index key of the first word: a word, "x*" (prefix), "#" (number), "" (any)
    second: str | None  # key of its second word, None for one word


class _Seq(NamedTuple):
    regex: str
    firsts: set[str]
    seconds: set[str]
    open_end: bool  # some alternative is one word: the second word comes from the next slot


class _Phrase:
    """One phrase, matched at a token start; compiled on first use (loading stays fast, and
    the regex is built only from escaped words, so it cannot fail to compile)."""

    __slots__ = ("match", "rule", "second", "source")

    def __init__(self, rule: Rule, source: str, second: frozenset[str] | None) -> None:
        self.rule = rule
        self.source = source
        self.second = second  # the next word must be one of these (None: not checked)
        self.match: Callable[[str, int], re.Match[str] | None] = self._compile_and_match

    def compile(self) -> bool:
        """Compile the regex now, if it is not yet; whether it was compiled by this call."""
        if getattr(self.match, "__self__", None) is not self:
            return False
        self.match = re.compile(self.source).match
        return True

    def _compile_and_match(self, text: str, pos: int) -> re.Match[str] | None:
        self.match = re.compile(self.source).match  # later calls go straight to the regex
        return self.match(text, pos)


class RuleSet:
    """Compiled triage rules; build with `load_rules`.

    Each phrase is indexed by the words that can start it, so a tip is scanned once, word by
    word, and a phrase's regex is only tried where its first word occurs; raw `patterns` are
    searched over the whole text.
    """

    def __init__(self, raw: RawRules) -> None:
        self.normalizer = Normalizer(raw.aliases)
        self.negators = frozenset(self._norm_words(raw.negators))
        self.stopwords = {
            lang: frozenset(self._norm_words(words)) for lang, words in raw.stopwords.items()
        }
        self._lexicon: set[str] = set()
        self._words: dict[str, _Alt] = {}
        self._vocab: dict[str, list[_Alt]] = {}
        for name in raw.vocab:
            words = _expand_vocab(raw.vocab, name, ())
            self._vocab[name] = [self._word(w, f"vocab.{name}") for w in dict.fromkeys(words)]
        names = {e.table["id"] for e in raw.entries.values() if e.kind == "context"}
        names |= {
            e.table.get("tag", e.table["id"]) for e in raw.entries.values() if e.kind == "context"
        }
        self._exact: dict[str, list[_Phrase]] = {}
        self._prefix: dict[str, list[_Phrase]] = {}
        self._patterns: list[tuple[Rule, re.Pattern[str]]] = []
        self._cache: dict[str, tuple[tuple[_Phrase, ...], dict[str, tuple[_Phrase, ...]]]] = {}
        rules = [self._compile(entry, names) for entry in raw.entries.values()]
        ids = {rule.id for rule in rules}
        for rule in rules:
            unknown = [a for a in getattr(rule, "applies", ()) if "." in a and a not in ids]
            if unknown:
                raise TriageRulesError(
                    f"context {rule.id!r}: field 'applies': no rule with id {unknown[0]!r}"
                )
        self._prefix_lengths = tuple(sorted({len(k) for k in self._prefix}))
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.normalizer.lexicon = frozenset(self._lexicon)

    def scan(self, norm: Normalized) -> list[Hit]:
        """Every match of every rule in the normalized text (the longest per rule and start),
        in text order: by start, the longest first (the classifier relies on this order)."""
        text = norm.text
        best: dict[tuple[str, int], Hit] = {}
        words = text.split(" ") if text else []
        words.append("")
        cache = self._cache
        pos = 0
        for i in range(len(words) - 1):
            word = words[i]
            entry = cache.get(word)
            anywhere, by_next = entry if entry is not None else self._candidates(word)
            if by_next:
                following = words[i + 1]
                found = by_next.get("#" if following.isdigit() else following)
                if found:
                    anywhere = anywhere + found
            for phrase in anywhere:
                m = phrase.match(text, pos)
                if m is not None:
                    end = m.end()
                    key = (phrase.rule.id, pos)
                    if end > pos and (key not in best or best[key].end < end):
                        best[key] = Hit(phrase.rule, pos, end)
            pos += len(word) + 1
        for rule, regex in self._patterns:
            for m in regex.finditer(text):
                if m.end() > m.start():
                    _keep(best, Hit(rule, m.start(), m.end()))
        # a shorter match of the same rule inside a longer one adds nothing
        kept: list[Hit] = []
        reach: dict[str, int] = {}
        for hit in sorted(best.values(), key=lambda h: (h.start, -h.end)):
            if hit.end > reach.get(hit.rule.id, -1):
                reach[hit.rule.id] = hit.end
                kept.append(hit)
        return kept

    def warm(self) -> int:
        """Compile every phrase now rather than on its first use; returns how many were
        compiled. A compile costs about a millisecond, so a long text full of words that start
        phrases never used before would otherwise pay for all of them at once; a long-running
        process can call this once, off the path of a tip."""
        phrases = {
            id(p): p for index in (self._exact, self._prefix) for ps in index.values() for p in ps
        }
        return sum(phrase.compile() for phrase in phrases.values())

    def _candidates(self, word: str) -> tuple[tuple[_Phrase, ...], dict[str, tuple[_Phrase, ...]]]:
        """Phrases that may start at `word`: those checked anywhere, and those keyed by the
        word that must follow (cached: tips repeat the same words)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        found = list(self._exact.get("#" if word.isdigit() else word, ()))
        prefix = self._prefix
        for k in self._prefix_lengths:
            if len(word) < k:
                break
            more = prefix.get(word[:k])
            if more:
                found.extend(more)
        # most words start no phrase: they share one empty answer
        result = self._index(found) if found else _NOTHING
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = result
        return result

    @staticmethod
    def _index(
        found: list[_Phrase],
    ) -> tuple[tuple[_Phrase, ...], dict[str, tuple[_Phrase, ...]]]:
        """Phrases checked anywhere, and phrases keyed by the word that must follow."""
        by_next: dict[str, list[_Phrase]] = {}
        for phrase in found:
            for nxt in phrase.second or ():
                by_next.setdefault(nxt, []).append(phrase)
        return (
            tuple(p for p in found if p.second is None),
            {k: tuple(v) for k, v in by_next.items()},
        )

    def _norm_words(self, words: set[str]) -> list[str]:
        return [self.normalizer.word(w, use_aliases=False) for w in words]

    def _word(self, word: str, where: str) -> _Alt:
        """One phrase word, `word*` or several-word vocabulary entry."""
        known = self._words.get(word)
        if known is not None:
            return known
        wildcard = word.endswith("*")
        base = word[:-1] if wildcard else word
        tokens = [t for t in self.normalizer.normalize(base).text.split() if t not in ".,"]
        if not tokens:
            raise TriageRulesError(f"{where}: {word!r} has no letters or digits")
        self._lexicon.update(tokens)
        keys = list(tokens)
        regex = re.escape(" ".join(tokens))
        if wildcard:
            keys[-1] += "*"
            regex += "[^ .,]*"
        self._words[word] = _Alt(regex, keys[0], keys[1] if len(keys) > 1 else None)
        return self._words[word]

    def _compile(self, entry: Entry, context_names: set[str]) -> Rule:
        table, where = entry.table, entry.where
        rule = build_rule(entry, context_names)
        for i, phrase in enumerate(table.get("phrases", [])):
            regex, keys, second = self._phrase(phrase, f"{where}: phrases[{i}]")
            compiled = _Phrase(rule, rf"(?:{regex})(?![^ ])", second)
            for key in keys:
                if key.endswith("*"):
                    self._prefix.setdefault(key[:-1], []).append(compiled)
                else:
                    self._exact.setdefault(key, []).append(compiled)
        for i, pattern in enumerate(table.get("patterns", [])):
            self._patterns.append(
                (rule, re.compile(self._pattern(pattern, f"{where}: patterns[{i}]")))
            )
        return rule

    def _phrase(self, phrase: str, where: str) -> tuple[str, set[str], frozenset[str] | None]:
        """Regex, the words that can start the phrase, and the words that can come second
        (None when anything may): the scan tries a phrase only where both fit."""
        slots = _SLOT.findall(phrase)
        if "".join(slots).replace(" ", "") != phrase.replace(" ", ""):
            raise TriageRulesError(f"{where}: unbalanced ( ) or [ ] in {phrase!r}")
        out: list[str] = []
        positions: list[tuple[bool, list[_Seq]]] = []  # (optional, alternatives); gaps: []
        for i, slot in enumerate(slots):
            if slot.startswith("~"):
                out.append(_gap(slot, i, len(slots), where))
                positions.append((True, []))
                continue
            optional = slot.startswith("[")
            if optional and i == 0:
                raise TriageRulesError(f"{where}: a phrase cannot start with an optional [word]")
            body = slot[1:-1] if slot[0] in "[(" else slot
            alternatives = [self._sequence(alt, where) for alt in body.split("|")]
            regex = "(?:" + "|".join(alt.regex for alt in alternatives) + ")"
            out.append(regex if i == 0 else f"(?: {regex})?" if optional else f" {regex}")
            positions.append((optional, alternatives))
        first = {key for alt in positions[0][1] for key in alt.firsts}
        if "" in first:
            raise TriageRulesError(f"{where}: a phrase cannot start with '*' (any word)")
        return "".join(out), first, _second_words(positions)

    def _sequence(self, alt: str, where: str) -> _Seq:
        """One alternative: words in a row, each a word, `word*`, `#`, `*` or `{vocab}`."""
        words = alt.split()
        if not words:
            raise TriageRulesError(f"{where}: empty alternative in {alt!r}")
        if "*" in words and len(words) > 1:
            raise TriageRulesError(f"{where}: '*' (any word) stands alone in its position")
        parts = [self._part(word, where) for word in words]
        regex = " ".join("(?:" + "|".join(a.regex for a in part) + ")" for part in parts)
        seconds: set[str] = set()
        open_end = False
        for a in parts[0]:
            if a.second is not None:
                seconds.add(a.second)
            elif len(parts) > 1:
                seconds.update(b.first for b in parts[1])
            else:
                open_end = True
        return _Seq(regex, {a.first for a in parts[0]}, seconds, open_end)

    def _part(self, word: str, where: str) -> list[_Alt]:
        if word.startswith("{") and word.endswith("}"):
            if word[1:-1] not in self._vocab:
                raise TriageRulesError(f"{where}: unknown vocabulary {word}")
            return self._vocab[word[1:-1]]
        if word == "#":
            return [_Alt(r"\d+", "#", None)]
        if word in (".", ","):  # a sentence end (the text always ends with one) or a comma
            return [_Alt(re.escape(word), word, None)]
        if word == "*":
            return [_Alt(r"[^ .,]+", "", None)]
        if any(c in word for c in "{}[]()~"):
            raise TriageRulesError(f"{where}: malformed word {word!r}")
        return [self._word(word, where)]

    def _pattern(self, pattern: str, where: str) -> str:
        def vocab(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self._vocab:
                raise TriageRulesError(f"{where}: unknown vocabulary {{{name}}}")
            return "(?:" + "|".join(a.regex for a in self._vocab[name]) + ")"

        bad = _BAD_PATTERN_TEXT.search(re.sub(r"\{[a-z_][a-z0-9_]*\}", "", pattern))
        if bad:
            raise TriageRulesError(
                f"{where}: {bad.group()!r}: patterns match normalized text (lowercase, no "
                "accents, repeated letters collapsed: write 'kil', not 'kill')"
            )
        expanded = re.sub(r"\{([a-z_][a-z0-9_]*)\}", vocab, pattern)
        try:
            re.compile(expanded)
        except re.error as e:
            raise TriageRulesError(f"{where}: invalid regular expression: {e}") from None
        return expanded


def _expand_vocab(vocab: Mapping[str, list[str]], name: str, seen: tuple[str, ...]) -> list[str]:
    """A vocabulary's words, with entries like "{firearm}" replaced by that list's words."""
    if name in seen:
        raise TriageRulesError(f"vocab.{name}: refers to itself through {' -> '.join(seen)}")
    out: list[str] = []
    for word in vocab[name]:
        ref = re.fullmatch(r"\{([a-z_][a-z0-9_]*)\}", word.strip())
        if ref is None:
            out.append(word)
        elif ref.group(1) not in vocab:
            raise TriageRulesError(f"vocab.{name}: unknown vocabulary {word}")
        else:
            out.extend(_expand_vocab(vocab, ref.group(1), (*seen, name)))
    return out


def _gap(slot: str, index: int, count: int, where: str) -> str:
    gap = slot[1:] or "3"
    if not gap.isdigit() or not 0 < int(gap) <= _MAX_GAP:
        raise TriageRulesError(f"{where}: gap {slot!r}: use ~ or ~1 .. ~{_MAX_GAP}")
    if index in (0, count - 1):
        raise TriageRulesError(f"{where}: a gap (~) must sit between two words")
    return rf"(?: [^ .,]+){{0,{gap}}}"


def _second_words(positions: list[tuple[bool, list[_Seq]]]) -> frozenset[str] | None:
    """Words that can follow the first word of a phrase, or None when any word can."""
    second: set[str] = set()
    open_end = False
    for alt in positions[0][1]:
        second |= alt.seconds
        open_end = open_end or alt.open_end
    if open_end:
        if len(positions) < 2 or positions[1][0]:  # nothing after, an optional word or a gap
            return None
        second.update(key for alt in positions[1][1] for key in alt.firsts)
    if any(key == "" or key.endswith("*") for key in second):
        return None
    return frozenset(second)


def _keep(best: dict[tuple[str, int], Hit], hit: Hit) -> None:
    key = (hit.rule.id, hit.start)
    if key not in best or best[key].end < hit.end:
        best[key] = hit


@functools.lru_cache(maxsize=1)
def _default_raw() -> RawRules:
    return load_raw_defaults()


@functools.lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The packaged English and Spanish rules, compiled once per process."""
    return RuleSet(_default_raw())


def load_rules(
    extra: Mapping[str, Any] | None = None,
    *,
    source: str = "[triage]",
    base_dir: Path | None = None,
) -> RuleSet:
    """The default rules merged with a district's `[triage]` table (validated; see rules.py).

    `source` names the table in error messages; relative `files` resolve against `base_dir`
    (the configuration file's folder), or the working directory when it is not given.
    """
    if not extra:
        return default_rules()
    raw = _default_raw().copy()
    merge_table(raw, extra, source, base_dir)
    return RuleSet(raw)
