"""Normalization of tip text before matching, with a map back to the original offsets.

Students write "g u n", "k.i.l.l", "5h00t", "shoooot", "gunn", "🔫" and mix English with
Spanish. Every rule is matched against the normalized form, and rule phrases are normalized the
same way, so a rule written as "kill" also matches all of those spellings:

- case and accents: NFKD, combining marks dropped, casefolded ("Mañana" -> "manana");
- apostrophes vanish ("don't" -> "dont"), a leading "@" of a handle is dropped;
- spaced or dotted single letters are joined ("g u n", "k.i.l.l", "b-o-m-b" -> one word);
- leetspeak inside words that mix letters and digits or symbols ("k1ll", "g0nn4", "$h00t");
  unit-like tokens such as "9mm", "11th", "ar15", "rm212" are left alone;
- repeated letters collapse to one ("shoooot" -> "shot", "kill" -> "kil", "gunn" -> "gun");
- aliases (misspellings, abbreviations, local slang) replace whole words ("tmrw" -> "tomorrow");
- emoji that carry meaning become words (🔫 gun, 🔪 knife, 💣 bomb, ☠️ death, 🩸 blood, 💊 pills);
- sentence ends become "." tokens and commas "," tokens, so phrases and negations stay local;
  the text always ends with a "." token.

The result is a string of space-separated tokens; each token remembers the span of the original
text it came from, so matches can be shown to staff in the student's own words.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["EMOJI_WORDS", "Normalized", "Normalizer"]

EMOJI_WORDS: Mapping[str, str] = {
    "\U0001f52b": "gun",  # 🔫
    "\U0001f52a": "knife",  # 🔪
    "\U0001f5e1": "knife",  # 🗡
    "\u2694": "knife",  # ⚔
    "\U0001f4a3": "bomb",  # 💣
    "\U0001f9e8": "bomb",  # 🧨
    "\u2620": "death",  # ☠
    "\u26b0": "death",  # ⚰
    "\U0001fa78": "blood",  # 🩸
    "\U0001f48a": "pills",  # 💊
    "\U0001f489": "needle",  # 💉
    "\U0001faa2": "rope",  # 🪢
}

_LETTER = r"[^\W\d_]"
_WORDCHAR = r"[^\W_]|[\u0300-\u036f@$]"
# Three or more single letters joined by the same separator: "g u n", "k.i.l.l", "b-o-m-b".
_SPACED = (
    rf"(?<![^\W_]){_LETTER}(?P<sep>[ .\-_*\u00b7\u2022]){_LETTER}"
    rf"(?:(?P=sep){_LETTER})+(?![^\W_])"
)
_WORD = rf"(?:{_WORDCHAR})+(?:[!|*'\u2019\u02bc`\u00b4]+(?:{_WORDCHAR})+)*"
_REST = rf"(?P<word>{_WORD})|(?P<end>[.!?;\n\u3002]+)|(?P<comma>,)|(?P<sym>[^\s\w])"
_TOKEN = re.compile(rf"(?P<spaced>{_SPACED})|{_REST}")
_TOKEN_PLAIN = re.compile(_REST)  # most texts have no spaced letters: skip that alternative
_HAS_SPACED = re.compile(_SPACED)
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc`\u00b4*")
_LEET = str.maketrans("013457@$!|", "oieastasil")
_LEET_CHARS = frozenset("013457@$!|")
_UNIT_LIKE = re.compile(r"\d+[a-z]{1,3}|[a-z]+\d+")  # 9mm, 11th, ar15, rm212, kingg07
_REPEATS = re.compile(r"([^\W\d_])\1+")
_CACHE_LIMIT = 50_000
_ONE_LETTER_WORDS = frozenset("aiyoeu")


@dataclass(frozen=True)
class Normalized:
    """Normalized text plus, for each token, where it came from in the original text."""

    original: str
    text: str
    starts: tuple[int, ...]  # offset of each token in `text`
    origins: tuple[tuple[int, int], ...]  # (start, end) of each token in `original`
    breaks: tuple[int, ...]  # offsets in `text` of "." tokens (sentence ends)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) range of the normalized text to the original text."""
        first = max(bisect_right(self.starts, start) - 1, 0)
        last = max(bisect_right(self.starts, max(end - 1, start)) - 1, first)
        return self.origins[first][0], self.origins[last][1]

    def sentence(self, pos: int) -> int:
        """Index of the sentence that the normalized offset `pos` falls in."""
        return bisect_right(self.breaks, pos)


class Normalizer:
    """Turns raw text into `Normalized` tokens; aliases come from the rule files."""

    def __init__(self, aliases: Mapping[str, str] | None = None) -> None:
        self._cache: dict[str, str] = {}
        self.lexicon: frozenset[str] = frozenset()  # words the rules use (set by RuleSet)
        raw = dict(aliases or {})
        self.aliases: dict[str, str] = {}
        for key, value in raw.items():
            self.aliases[self.word(key, use_aliases=False)] = " ".join(
                self.word(part, use_aliases=False) for part in _words(value)
            )

    def word(self, raw: str, *, use_aliases: bool = True) -> str:
        """Normalize one word; may return several space-separated words (an alias)."""
        if use_aliases:
            cached = self._cache.get(raw)
            if cached is not None:
                return cached
        folded = _strip_accents(raw).translate(_APOSTROPHES)
        folded = folded.lstrip("@") or folded
        result = self._fold(folded, use_aliases=use_aliases)
        if use_aliases:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[raw] = result
        return result

    def _fold(self, folded: str, *, use_aliases: bool) -> str:
        collapsed = _REPEATS.sub(r"\1", folded)
        if use_aliases:
            early = self.aliases.get(collapsed)
            if early is not None:
                return early
        if not any(map(str.isalpha, folded)):
            return folded.strip("$@!|") or folded
        if not _LEET_CHARS.isdisjoint(folded) and not _UNIT_LIKE.fullmatch(folded):
            collapsed = _REPEATS.sub(r"\1", folded.translate(_LEET))
        folded = collapsed
        if use_aliases:
            return self.aliases.get(folded, folded)
        return folded

    def _spaced(self, raw: str) -> str:
        """Join "g u n"; keep a leading "a"/"i"/"y" apart when only the rest is a known word."""
        letters = re.sub(r"[ .\-_*\u00b7\u2022]", "", raw)
        joined = self.word(letters)
        if len(letters) >= 4 and letters[0].lower() in _ONE_LETTER_WORDS:
            rest = self.word(letters[1:])
            if joined not in self.lexicon and rest in self.lexicon:
                return f"{letters[0].lower()} {rest}"
        return joined

    def normalize(self, text: str) -> Normalized:
        """Normalize `text` into space-separated tokens that keep their original spans."""
        out = _Tokens()
        tokenizer = _TOKEN if _HAS_SPACED.search(text) else _TOKEN_PLAIN
        cache = self._cache
        for m in tokenizer.finditer(text):
            kind = m.lastgroup
            raw = m.group()
            if kind == "word":  # the common case, inlined
                piece = cache.get(raw) or self.word(raw)
                if piece:
                    out.parts.append(piece)
                    out.starts.append(out.pos)
                    out.origins.append(m.span())
                    out.pos += len(piece) + 1
            elif kind == "spaced":
                piece = self._spaced(raw)
                if piece[1:2] == " ":  # "a b o m b" is "a bomb": the article stays a word
                    out.add(piece[0], m.start(), m.start() + 1)
                    out.add(piece[2:], m.start() + 2, m.end())
                else:
                    out.add(piece, m.start(), m.end())
            elif kind in ("end", "comma"):
                out.punctuation("." if kind == "end" else ",", m.start(), m.end())
            else:
                out.add(EMOJI_WORDS.get(raw, ""), m.start(), m.end())
        out.close(len(text))
        return Normalized(
            original=text,
            text=" ".join(out.parts),
            starts=tuple(out.starts),
            origins=tuple(out.origins),
            breaks=tuple(out.breaks),
        )


class _Tokens:
    """Normalized tokens being collected, each with its offset and original span."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.starts: list[int] = []
        self.origins: list[tuple[int, int]] = []
        self.breaks: list[int] = []
        self.pos = 0

    def add(self, piece: str, start: int, end: int) -> None:
        if piece:
            self.parts.append(piece)
            self.starts.append(self.pos)
            self.origins.append((start, end))
            self.pos += len(piece) + 1

    def punctuation(self, mark: str, start: int, end: int) -> None:
        """A sentence end or comma, never first and never twice in a row."""
        if self.parts and self.parts[-1] not in ".,":
            if mark == ".":
                self.breaks.append(self.pos)
            self.add(mark, start, end)

    def close(self, length: int) -> None:
        """End the text with a sentence end, so "help" at the very end reads as "help ."."""
        if self.parts and self.parts[-1] == ",":
            self.parts.pop()
            self.starts.pop()
            self.origins.pop()
            self.pos = self.starts[-1] + len(self.parts[-1]) + 1 if self.parts else 0
        self.punctuation(".", length, length)


def _strip_accents(text: str) -> str:
    if text.isascii():  # most words: no accents to strip, and casefold is lower
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _words(text: str) -> list[str]:
    return [m.group() for m in _TOKEN.finditer(text) if m.lastgroup in ("word", "spaced")]
