"""GSM-7 text for alert SMS: transliterate, measure in septets, cut to a segment budget.

One character outside GSM-7 (an emoji, a curly quote, "·") switches the whole message to UCS-2,
which halves the characters per segment: a 2-segment alert would become 5. Alerts are therefore
made of GSM-7 characters only, and counted the way carriers count them.
"""

from __future__ import annotations

import re
import unicodedata

BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENDED = frozenset("^{}\\[~]|€")  # two septets each (escape + character)
SINGLE_SEGMENT = 160
MULTI_SEGMENT = 153  # per segment once split: the rest is the concatenation header
TWO_SEGMENTS = 2 * MULTI_SEGMENT  # 306

_REPLACE = {
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "`": "'",
    "´": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "″": '"',
    "«": '"',
    "»": '"',
    "–": "-",
    "—": "-",
    "‒": "-",
    "―": "-",
    "−": "-",
    "‐": "-",
    "‑": "-",
    "…": "...",
    "·": "-",
    "•": "-",
    "→": "->",
    "⇒": "=>",
    "←": "<-",
    "×": "x",
    "\t": " ",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",
}
_SPACES = re.compile(r"[ \r\n]+")


def is_gsm7(text: str) -> bool:
    return all(ch in BASIC or ch in EXTENDED for ch in text)


def septets(text: str) -> int:
    """Length in GSM-7 septets (extension characters count twice)."""
    return sum(2 if ch in EXTENDED else 1 for ch in text)


def segments(text: str) -> int:
    n = septets(text)
    return 1 if n <= SINGLE_SEGMENT else -(-n // MULTI_SEGMENT)


def _one(ch: str) -> str:
    if ch in BASIC or ch in EXTENDED:
        return ch
    if ch in _REPLACE:
        return _REPLACE[ch]
    # "á" is not GSM-7 but its base letter is; an emoji or a CJK character has none and goes.
    decomposed = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in decomposed if c in BASIC or c in EXTENDED)


def to_gsm7(text: str, *, single_line: bool = True) -> str:
    """Transliterate to GSM-7; with single_line, newlines and runs of spaces become one space."""
    out = "".join(_one(ch) for ch in text)
    if single_line:
        out = _SPACES.sub(" ", out).strip()
    return out


def cut(text: str, budget: int, ellipsis: str = "...") -> str:
    """`text` (GSM-7) cut to at most `budget` septets, ending in `ellipsis` when it was cut."""
    if septets(text) <= budget:
        return text
    room = budget - septets(ellipsis)
    out: list[str] = []
    used = 0
    for ch in text:
        cost = 2 if ch in EXTENDED else 1
        if used + cost > room:
            break
        out.append(ch)
        used += cost
    kept = "".join(out).rstrip()
    # Prefer ending on a word boundary when that loses little.
    space = kept.rfind(" ")
    if space > len(kept) - 12 and space > 0:
        kept = kept[:space].rstrip(" ,;:-")
    return (kept + ellipsis) if room > 0 else ""
