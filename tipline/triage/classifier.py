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
from collections.abc import Sequence
from itertools import accumulate, count, repeat
from operator import add, attrgetter

from tipline.triage.model import Benign, Context, Hit, Trigger
from tipline.triage.normalize import Normalized
from tipline.triage.ruleset import RuleSet, default_rules
from tipline.triage.verdict import CATEGORIES, LEVELS, SEVERITIES, Span, Verdict

__all__ = ["classify", "classify_normalized", "detect_language"]

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
_WEIGHT = attrgetter("weight")

# A rule's matches, grouped by rule id (the rule comes along, already narrowed to its kind).
_Triggered = tuple[Trigger, list[Hit]]
_Result = tuple[int, Trigger, list[Hit], list[Context]]  # level, trigger, its hits, contexts used


RULE_VOTE = 2  # a matched rule of a language's own file weighs as two of its frequent words


def classify(text: str, lang: str | None = None, rules: RuleSet | None = None) -> Verdict:
    """The rules' verdict on one tip: severity, category, language, reasons, matched spans."""
    ruleset = rules if rules is not None else default_rules()
    return classify_normalized(ruleset.normalizer.normalize(text), ruleset, lang)


def classify_normalized(norm: Normalized, ruleset: RuleSet, lang: str | None = None) -> Verdict:
    """The rules' verdict on a text already normalized by `ruleset`."""
    hits = ruleset.scan(norm)
    language = lang if lang is not None else detect_language(norm, ruleset, hits)
    if language not in ruleset.stopwords:
        raise ValueError(
            f"unknown language {language!r} (one of {', '.join(sorted(ruleset.stopwords))})"
        )
    return _Decision(norm, hits, ruleset).verdict(language)


def detect_language(norm: Normalized, ruleset: RuleSet, hits: Sequence[Hit] = ()) -> str:
    """The language whose frequent words occur most often, each distinct rule of a language's
    own file that matched (`es.…`) counting as two more; English on a tie. A short text such
    as "me quiero morir" holds no Spanish frequent word ("me" is an English one) but matches a
    Spanish rule, and a student should be answered in the language they wrote."""
    tokens = norm.text.split()
    # map() keeps the per-token membership test in C: this runs on every tip
    counts = {
        lang: sum(map(words.__contains__, tokens)) for lang, words in ruleset.stopwords.items()
    }
    for rule_id in {hit.rule.id for hit in hits}:
        prefix = rule_id.split(".", 1)[0]
        if prefix in counts and prefix != "en":
            counts[prefix] += RULE_VOTE
    if not counts:
        return "en"
    return max(sorted(counts), key=lambda lang: (counts[lang], lang == "en"))


def _category(results: list[_Result]) -> str:
    """The category with the largest weight x severity; ties go to the more serious category."""
    scores: dict[str, float] = defaultdict(float)
    for level, trigger, hits, _ in results:
        scores[trigger.category] += trigger.weight * _VALUE[level] * _spread(hits)
    # keys (score, -rank): CATEGORIES runs from the most serious, which wins a tie
    _, minus_rank = max(zip(map(scores.get, CATEGORIES, repeat(0.0)), count(0, -1)))
    category = CATEGORIES[-minus_rank]
    if category == "violence" and "weapon" in scores:
        return "weapon"  # a weapon named in a violent threat or attack makes it a weapon tip
    return category


def _spread(hits: list[Hit]) -> float:
    """Several distinct matches of one rule count a little more than one."""
    if len(hits) == 1:
        return 1.0  # the common case, without building the set
    return 1.0 + 0.25 * min(len({(h.start, h.end) for h in hits}) - 1, 4)


def _partition(
    hits: list[Hit],
) -> tuple[list[tuple[Trigger, Hit]], list[tuple[Benign, Hit]], list[tuple[Context, Hit]]]:
    """Triggers, benign idioms and contexts, in scan order, each hit with its typed rule."""
    triggers: list[tuple[Trigger, Hit]] = []
    benign: list[tuple[Benign, Hit]] = []
    contexts: list[tuple[Context, Hit]] = []
    for hit in hits:
        rule = hit.rule
        if isinstance(rule, Context):
            contexts.append((rule, hit))
        elif isinstance(rule, Trigger):
            triggers.append((rule, hit))
        else:
            benign.append((rule, hit))
    return triggers, benign, contexts


def _longest_wins(contexts: list[tuple[Context, Hit]]) -> list[tuple[Context, Hit]]:
    """Drop a context hit inside a longer one of another effect: in "yesterday after school"
    the past wins over "after school", in "idk if hes serious" the hedge over "hes serious"."""
    if len(contexts) < 2:
        return contexts
    kept = []
    active: list[tuple[Context, Hit]] = []  # earlier hits that may still contain the current one
    for pair in contexts:  # in scan order: by start, the longest first
        ctx, hit = pair
        if active:
            active = [(c, o) for c, o in active if o.end >= hit.end]
            if _inside_longer(ctx, hit, active):
                active.append(pair)
                continue
        kept.append(pair)
        active.append(pair)
    return kept


def _inside_longer(ctx: Context, hit: Hit, others: list[tuple[Context, Hit]]) -> bool:
    """Whether a longer hit of another effect among `others` (which all reach past `hit`)
    contains it."""
    length = hit.end - hit.start
    return any(c.effect != ctx.effect and o.end - o.start > length for c, o in others)


class _Decision:
    """Works out one verdict; kept as a class so each step stays small and readable."""

    def __init__(self, norm: Normalized, hits: list[Hit], ruleset: RuleSet) -> None:
        self.norm = norm
        self.negators = ruleset.negators
        self.reasons: list[str] = []
        self._words: list[str] = []
        self._token_starts: list[int] | None = None
        self.spans: dict[tuple[int, int, str], Span] = {}
        triggers, benign, contexts = _partition(hits)
        self.triggers = self._unmasked(triggers, benign) if benign else triggers
        # context hits that count, by context id, with the context itself
        self.contexts: dict[str, tuple[Context, list[Hit]]] = {}
        present: set[str] = set()  # ids and tags of the contexts that count
        for ctx, hit in _longest_wins(contexts):
            if ctx.negatable and self._negated(hit):
                continue
            group = self.contexts.get(ctx.id)
            if group is None:
                self.contexts[ctx.id] = (ctx, [hit])
                present.add(ctx.id)
                present.add(ctx.tag)
            else:
                group[1].append(hit)
        # contexts that count (their `unless` contexts are absent); a sentence-scoped one comes
        # with the sentences it matched in, the others with None
        self._active = [
            (ctx, {norm.sentence(h.start) for h in ctx_hits} if ctx.sentence_only else None)
            for ctx, ctx_hits in self.contexts.values()
            if ctx.unless.isdisjoint(present)
        ]
        # only when some context is sentence-scoped do the triggers' sentences matter
        self._sentence_scoped = any(sentences is not None for _, sentences in self._active)

    def verdict(self, language: str) -> Verdict:
        by_rule: dict[str, _Triggered] = {}
        for trigger, hit in self.triggers:
            group = by_rule.get(trigger.id)
            if group is None:
                by_rule[trigger.id] = (trigger, [hit])
            else:
                group[1].append(hit)
        results: list[_Result] = []
        for trigger, hits in by_rule.values():
            negated = all(self._negated(h) for h in hits)
            if negated and trigger.negatable:
                self.reasons.append(f"negated, not counted: {self._quotes(hits, mark=False)}")
                continue
            level, used = self._level(trigger, negated, hits)
            results.append((level, trigger, hits, used))
        if not results:
            return self._finish("low", "other", language, ["no safety words or patterns matched"])
        results.sort(key=lambda r: (-r[0], -r[1].weight))
        top = results[0][0]
        lines = [f"{trigger.reason}: {self._quotes(hits)}" for _, trigger, hits, _ in results]
        shown: set[str] = set()
        for level, _, _, used in results:
            for ctx in used:
                if ctx.id not in shown and (level == top or ctx.effect == "cap"):
                    shown.add(ctx.id)
                    lines.append(f"{ctx.reason}: {self._quotes(self.contexts[ctx.id][1])}")
        if top >= _HIGH:
            lines.extend(self._hedge_notes())
        return self._finish(_SEVERITY_BY_LEVEL[top], _category(results), language, lines)

    def _level(self, trigger: Trigger, negated: bool, hits: list[Hit]) -> tuple[int, list[Context]]:
        raises: dict[str, Context] = {}
        lowers: dict[str, Context] = {}
        caps: list[Context] = []
        trigger_sentences = (
            {self.norm.sentence(h.start) for h in hits} if self._sentence_scoped else set()
        )
        for ctx, sentences in self._active:
            applies = ctx.applies
            if applies and trigger.category not in applies and trigger.id not in applies:
                continue
            if sentences is not None and sentences.isdisjoint(trigger_sentences):
                continue
            if ctx.effect == "raise" and ctx.weight > 0:
                if ctx.tag not in raises or raises[ctx.tag].weight < ctx.weight:
                    raises[ctx.tag] = ctx
            elif ctx.effect == "lower" and ctx.weight > 0:
                if ctx.tag not in lowers or lowers[ctx.tag].weight < ctx.weight:
                    lowers[ctx.tag] = ctx
            elif ctx.effect == "cap":
                caps.append(ctx)
        escalation = sum(map(_WEIGHT, raises.values())) - sum(map(_WEIGHT, lowers.values()))
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
                "a negation does not lower a life-safety concern below high: "
                + self._quotes(hits, mark=False)
            )
        return level, used

    def _unmasked(
        self, triggers: list[tuple[Trigger, Hit]], benign: list[tuple[Benign, Hit]]
    ) -> list[tuple[Trigger, Hit]]:
        kept: list[tuple[Trigger, Hit]] = []
        by_sentence: dict[int, list[tuple[Benign, Hit]]] = defaultdict(list)
        for rule, b in benign:
            by_sentence[self.norm.sentence(b.start)].append((rule, b))
        for trigger, hit in triggers:
            nearby = by_sentence.get(self.norm.sentence(hit.start), [])
            mask = next((m for m in nearby if _masks(m[0], m[1], hit, trigger)), None)
            if mask is None:
                kept.append((trigger, hit))
                continue
            self.reasons.append(f"{mask[0].reason}: {self._quotes([mask[1]])}")
        return kept

    def _negated(self, hit: Hit) -> bool:
        """A negator within a few words before the hit, in the same clause ("not a joke" and
        "not joking" affirm rather than negate, so they do not count)."""
        if self._token_starts is None:
            # the words of `text`, not its tokens (`norm.starts`): an alias token may hold
            # several words ("rn" -> "right now"), and negators are single words
            self._words = self.norm.text.split(" ")
            # word k starts after the k words before it and a space each (built in C)
            lengths = accumulate(map(len, self._words[:-1]), initial=0)
            self._token_starts = list(map(add, lengths, count()))
        index = bisect_right(self._token_starts, hit.start) - 1
        window = self._words[max(0, index - _NEGATION_REACH) : index]
        if self.negators.isdisjoint(window):
            return False  # the common case: no negator nearby at all
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
        return [
            f"{ctx.reason}: {self._quotes(ctx_hits)}"
            for ctx, ctx_hits in self.contexts.values()
            if ctx.effect == "hedge"
        ]

    def _quotes(self, hits: list[Hit], *, mark: bool = True) -> str:
        """The first few distinct matched stretches, as the student wrote them, for a reason
        line; with `mark`, also records where the first few matched (the spans staff see).
        One pass maps each hit back to the original text once for both."""
        original = self.norm.original
        quotes: list[str] = []
        # quotes come from the first hits only: a long message repeats its words
        for hit in hits[:_MAX_SPANS_PER_RULE]:
            if not mark and len(quotes) == _MAX_QUOTES:
                break
            start, end = self.norm.original_span(hit.start, hit.end)
            if mark:
                key = (start, end, hit.rule.id)
                if key not in self.spans:
                    self.spans[key] = Span(start, end, original[start:end], hit.rule.id)
            if len(quotes) < _MAX_QUOTES:
                quote = " ".join(original[start:end].split())
                if quote not in quotes:
                    quotes.append(quote)
        return ", ".join(map('"{}"'.format, quotes))

    def _finish(self, severity: str, category: str, language: str, lines: list[str]) -> Verdict:
        assert severity in SEVERITIES  # noqa: S101 - internal invariant
        reasons = tuple(dict.fromkeys(lines + self.reasons))
        spans = tuple(map(self.spans.__getitem__, sorted(self.spans)))
        return Verdict(severity, category, language, reasons, spans)


def _masks(rule: Benign, b: Hit, hit: Hit, trigger: Trigger) -> bool:
    """Whether the benign idiom `b` hides the trigger `hit`."""
    if rule.categories and trigger.category not in rule.categories:
        return False
    if rule.scope == "overlap":
        return b.start < hit.end and hit.start < b.end
    return trigger.ambiguous  # the caller only offers benign hits of the same sentence
