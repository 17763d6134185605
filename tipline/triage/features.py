"""The learned layer's features: word 1-2-grams and character 2-5-grams of the normalized text.

Shared by training and inference, so both see exactly the same features. The text is the
rules' normalized form (accents, leetspeak, spaced letters, emoji and aliases already undone),
so "k1ll", "k i l l" and "kill" are one feature. Character n-grams are taken inside each word
padded with a space (sklearn's `char_wb`), which carries misspellings, Spanish endings and
unseen compounds; a word's n-grams are cached, since tips repeat their words.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

__all__ = ["CONCEPT", "char_grams", "grams_of_word", "word_grams"]

_BREAKS = frozenset({".", ","})
CONCEPT = "§"  # a concept word added beside the text (concepts.py): no character n-grams
_MAX_WORD = 24  # longer tokens (links, keyboard mashing) add nothing past this


def word_grams(text: str) -> Counter[str]:
    """Counts of the words and of the pairs of adjacent words within a clause."""
    tokens = text.split()
    grams = Counter(tokens)  # counted in C: a 10 KB message has two thousand words
    for mark in _BREAKS:
        grams.pop(mark, None)
    pairs = zip(tokens, tokens[1:], strict=False)
    grams.update([f"{a} {b}" for a, b in pairs if a not in _BREAKS and b not in _BREAKS])
    return grams


def char_grams(text: str) -> Counter[str]:
    """Counts of the 2- to 5-character n-grams inside each space-padded word."""
    grams: Counter[str] = Counter()
    for token in text.split():
        if token not in _BREAKS and not token.startswith(CONCEPT):
            grams.update(grams_of_word(token))
    return grams


def grams_of_word(word: str) -> tuple[str, ...]:
    """The character n-grams of one space-padded word, repeats included."""
    padded = f" {word[:_MAX_WORD]} "
    return tuple(map(padded.__getitem__, _slices(len(padded))))


@lru_cache(maxsize=_MAX_WORD + 3)
def _slices(length: int) -> tuple[slice, ...]:
    """Where the 2- to 5-character n-grams of a padded word of `length` are (slicing with
    ready-made slices is much faster than a generator, and every unseen word pays it)."""
    return tuple(slice(i, i + n) for n in range(2, 6) for i in range(length - n + 1))
