"""The triage decision: from rule matches to a severity, a category and reasons.

For every trigger (what the tip is about) the severity starts at the trigger's own level, goes
up by the weights of the raising contexts present (a time ahead, "right now", a place, a named
person, a weapon at hand, a plan), down by the lowering ones (nobody hurt, at home), never below
the trigger's own level nor above its `max`, and is capped by cap contexts (a past event, a fake
weapon) unless their `unless` contexts are present too. The tip's severity is the highest of its
triggers; its category is the one with the largest weight x severity.

Fail-safe by construction: hedges ("jk", "lol", "idk if serious") never lower anything; a
negation ("not gonna kill myself") caps a life-safety trigger at high, never lower; benign idioms
hide only the words they overlap (or, for a sentence-wide one like "in fortnite", only triggers
marked ambiguous); ambiguity rounds up: an uncertain reading keeps the more serious one, and ties
in category go to the more serious category. Half-weight signals (a place, a person) need a
second signal to lift a level. A tip with no trigger at all is `low`/`other`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from itertools import accumulate

from tipline.triage.model import Benign, Context, Hit, Trigger
from tipline.triage.normalize import Normalized
from tipline.triage.ruleset import RuleSet, default_rules
from tipline.triage.verdict import CATEGORIES, LEVELS, SEVERITIES, Span, Verdict

__all__ = ["classify", "detect_language"]

_HIGH = LEVELS["high"]
_VALUE = (1.0, 2.0, 4.0, 8.0)
_SEVERITY_BY_LEVEL = tuple(LEVELS)
_CLAUSE_BREAKS = frozenset({".", ",", "but", "pero", "aunque", "though"})
_NEGATION_REACH = 4
_AFFIRMING = frozenset(
    {"joking", "joke", "kiding", "playing", "lying", "laughing", "broma", "jugando"}
)
_MAX_QUOTES = 3
_MAX_SPANS_PER_RULE = 20


def classify(text: str, lang: str | None = None, rules: RuleSet | None = None) -> Verdict:
    """Triage one tip: severity, category, language, reasons shown to staff, matched spans."""
    ruleset = rules if rules is not None else default_rules()
    norm = ruleset.normalizer.normalize(text)
    hits = ruleset.scan(norm)
    language = lang if lang is not None else detect_language(norm, ruleset)
    if language not in ruleset.stopwords:
        raise ValueError(
            f"unknown language {language!r} (one of {', '.join(sorted(ruleset.stopwords))})"
        )
    return _Decision(norm, hits, ruleset).verdict(language)


def detect_language(norm: Normalized, ruleset: RuleSet) -> str:
    """The language whose frequent words occur most often; English on a tie."""
    tokens = norm.text.split()
    counts = {
        lang: sum(1 for t in tokens if t in words) for lang, words in ruleset.stopwords.items()
    }
    if not counts:
        return "en"
    return max(sorted(counts), key=lambda lang: (counts[lang], lang == "en"))


def _category(results: list[tuple[int, Trigger, list[Hit], list[Context]]]) -> str:
    """The category with the largest weight x severity; ties go to the more serious category."""
    scores: dict[str, float] = defaultdict(float)
    for level, trigger, hits, _ in results:
        # several distinct matches of one rule count a little more than one
        spread = 1.0 + 0.25 * min(len({(h.start, h.end) for h in hits}) - 1, 4)
        scores[trigger.category] += trigger.weight * _VALUE[level] * spread
    category = max(CATEGORIES, key=lambda c: (scores.get(c, 0.0), -CATEGORIES.index(c)))
    if category == "violence" and "weapon" in scores:
        return "weapon"  # a weapon named in a violent threat or attack makes it a weapon tip
    return category


def _longest_wins(hits: list[Hit]) -> list[Hit]:
    """Drop a context hit inside a longer one of another effect: in "yesterday after school"
    the past wins over "after school", in "idk if hes serious" the hedge over "hes serious"."""
    kept = []
    active: list[Hit] = []  # earlier hits that may still contain the current one
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        rule = hit.rule
        assert isinstance(rule, Context)  # noqa: S101 - only contexts are passed in
        active = [o for o in active if o.end >= hit.end]
        if not any(
            isinstance(o.rule, Context)
            and o.rule.effect != rule.effect
            and o.end - o.start > hit.end - hit.start
            for o in active
        ):
            kept.append(hit)
        active.append(hit)
    return kept


class _Decision:
    """Works out one verdict; kept as a class so each step stays small and readable."""

    def __init__(self, norm: Normalized, hits: list[Hit], ruleset: RuleSet) -> None:
        self.norm = norm
        self.negators = ruleset.negators
        self.reasons: list[str] = []
        self._words: list[str] = []
        self._token_starts: list[int] | None = None
        self.spans: dict[tuple[int, int, str], Span] = {}
        triggers = [h for h in hits if isinstance(h.rule, Trigger)]
        benign = [h for h in hits if isinstance(h.rule, Benign)]
        contexts = [h for h in hits if isinstance(h.rule, Context)]
        self.triggers = self._unmasked(triggers, benign)
        self.contexts: dict[str, list[Hit]] = defaultdict(list)
        for hit in _longest_wins(contexts):
            if isinstance(hit.rule, Context) and not (hit.rule.negatable and self._negated(hit)):
                self.contexts[hit.rule.id].append(hit)
        self.present = set(self.contexts) | {
            hits_[0].rule.tag
            for hits_ in self.contexts.values()
            if isinstance(hits_[0].rule, Context)
        }
        # contexts that count (their `unless` contexts are absent), with their sentences
        self._active = [
            (ctx, {norm.sentence(h.start) for h in ctx_hits})
            for ctx_hits in self.contexts.values()
            if isinstance(ctx := ctx_hits[0].rule, Context) and not ctx.unless & self.present
        ]

    def verdict(self, language: str) -> Verdict:
        by_rule: dict[str, list[Hit]] = defaultdict(list)
        for hit in self.triggers:
            by_rule[hit.rule.id].append(hit)
        results: list[tuple[int, Trigger, list[Hit], list[Context]]] = []
        for hits in by_rule.values():
            trigger = hits[0].rule
            assert isinstance(trigger, Trigger)  # noqa: S101 - grouped from Trigger hits above
            negated = all(self._negated(h) for h in hits)
            if negated and trigger.negatable:
                self.reasons.append(f"negated, not counted: {self._quotes(hits)}")
                continue
            level, used = self._level(trigger, negated, hits)
            results.append((level, trigger, hits, used))
        if not results:
            return self._finish("low", "other", language, ["no safety words or patterns matched"])
        results.sort(key=lambda r: (-r[0], -r[1].weight))
        top = results[0][0]
        lines = []
        for _, trigger, hits, _ in results:
            lines.append(f"{trigger.reason}: {self._quotes(hits)}")
            self._span(hits)
        shown: set[str] = set()
        for level, _, _, used in results:
            for ctx in used:
                if ctx.id not in shown and (level == top or ctx.effect == "cap"):
                    shown.add(ctx.id)
                    lines.append(f"{ctx.reason}: {self._quotes(self.contexts[ctx.id])}")
                    self._span(self.contexts[ctx.id])
        if top >= _HIGH:
            lines.extend(self._hedge_notes())
        return self._finish(_SEVERITY_BY_LEVEL[top], _category(results), language, lines)

    def _level(self, trigger: Trigger, negated: bool, hits: list[Hit]) -> tuple[int, list[Context]]:
        raises: dict[str, Context] = {}
        lowers: dict[str, Context] = {}
        caps: list[Context] = []
        trigger_sentences = {self.norm.sentence(h.start) for h in hits}
        for ctx, sentences in self._active:
            if ctx.applies and not {trigger.category, trigger.id} & ctx.applies:
                continue
            if ctx.sentence_only and sentences.isdisjoint(trigger_sentences):
                continue
            if ctx.effect == "raise" and ctx.weight > 0:
                if ctx.tag not in raises or raises[ctx.tag].weight < ctx.weight:
                    raises[ctx.tag] = ctx
            elif ctx.effect == "lower" and ctx.weight > 0:
                if ctx.tag not in lowers or lowers[ctx.tag].weight < ctx.weight:
                    lowers[ctx.tag] = ctx
            elif ctx.effect == "cap":
                caps.append(ctx)
        escalation = sum(c.weight for c in raises.values()) - sum(c.weight for c in lowers.values())
        level = trigger.level + int(max(0.0, escalation) + 1e-9)
        level = max(min(level, trigger.max_level), trigger.level)
        used = [*raises.values(), *lowers.values()] if level > trigger.level else []
        for cap in caps:
            if level > max(cap.cap, trigger.level):
                level = max(cap.cap, trigger.level)
                used.append(cap)
        if negated and level > _HIGH:
            level = _HIGH
            self.reasons.append(
                f"a negation does not lower a life-safety concern below high: {self._quotes(hits)}"
            )
        return level, used

    def _unmasked(self, triggers: list[Hit], benign: list[Hit]) -> list[Hit]:
        kept: list[Hit] = []
        by_sentence: dict[int, list[Hit]] = defaultdict(list)
        for b in benign:
            by_sentence[self.norm.sentence(b.start)].append(b)
        for hit in triggers:
            trigger = hit.rule
            assert isinstance(trigger, Trigger)  # noqa: S101 - filtered by the caller
            nearby = by_sentence.get(self.norm.sentence(hit.start), [])
            mask = next((b for b in nearby if self._masks(b, hit, trigger)), None)
            if mask is None:
                kept.append(hit)
                continue
            assert isinstance(mask.rule, Benign)  # noqa: S101 - filtered by the caller
            self.reasons.append(f"{mask.rule.reason}: {self._quotes([mask])}")
            self._span([mask])
        return kept

    def _masks(self, b: Hit, hit: Hit, trigger: Trigger) -> bool:
        rule = b.rule
        assert isinstance(rule, Benign)  # noqa: S101 - filtered by the caller
        if rule.categories and trigger.category not in rule.categories:
            return False
        if rule.scope == "overlap":
            return b.start < hit.end and hit.start < b.end
        return trigger.ambiguous  # the caller only offers benign hits of the same sentence

    def _negated(self, hit: Hit) -> bool:
        """A negator within a few words before the hit, in the same clause ("not a joke" and
        "not joking" affirm rather than negate, so they do not count)."""
        if self._token_starts is None:
            self._words = self.norm.text.split(" ")
            self._token_starts = list(accumulate((len(w) + 1 for w in self._words[:-1]), initial=0))
        index = bisect_right(self._token_starts, hit.start) - 1
        window = self._words[max(0, index - _NEGATION_REACH) : index]
        for i in range(len(window) - 1, -1, -1):
            token = window[i]
            if token in _CLAUSE_BREAKS:
                return False
            if token in self.negators:
                after = [t for t in window[i + 1 : i + 3] if t not in ("a", "4")][:1]
                if not (after and after[0] in _AFFIRMING):
                    return True
        return False

    def _hedge_notes(self) -> list[str]:
        notes = []
        for ctx_hits in self.contexts.values():
            ctx = ctx_hits[0].rule
            if isinstance(ctx, Context) and ctx.effect == "hedge":
                notes.append(f"{ctx.reason}: {self._quotes(ctx_hits)}")
                self._span(ctx_hits)
        return notes

    def _quotes(self, hits: Iterable[Hit]) -> str:
        quotes: list[str] = []
        for hit in hits:
            start, end = self.norm.original_span(hit.start, hit.end)
            quote = " ".join(self.norm.original[start:end].split())
            if quote not in quotes:
                quotes.append(quote)
                if len(quotes) == _MAX_QUOTES:
                    break
        return ", ".join(f'"{q}"' for q in quotes)

    def _span(self, hits: Iterable[Hit]) -> None:
        """Record where rules matched (the first few per rule: enough to show staff)."""
        for hit in list(hits)[:_MAX_SPANS_PER_RULE]:
            start, end = self.norm.original_span(hit.start, hit.end)
            key = (start, end, hit.rule.id)
            if key not in self.spans:
                self.spans[key] = Span(start, end, self.norm.original[start:end], hit.rule.id)

    def _finish(self, severity: str, category: str, language: str, lines: list[str]) -> Verdict:
        assert severity in SEVERITIES  # noqa: S101 - internal invariant
        reasons = list(dict.fromkeys([*lines, *self.reasons]))
        spans = tuple(self.spans[k] for k in sorted(self.spans))
        return Verdict(severity, category, language, tuple(reasons), spans)
