"""Web receipts: a random code that finds a tip and a diceware passphrase that opens it.

The code is 16 Crockford base32 characters (80 bits) so it survives being read aloud or copied
by hand; the passphrase is six words of the EFF long list (77 bits). Neither is ever stored:
both only as keyed hashes, the passphrase's salted by its receipt (see `intake.web`).
"""

from __future__ import annotations

import math
import re
import secrets
import unicodedata
from functools import cache

from diceware.wordlist import WordList, get_wordlist_path  # type: ignore[import-untyped]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 16
GROUP = 4
PASSPHRASE_WORDS = 6
WORDLIST_NAME = "en_eff"

# Crockford's decoding rules: letters people confuse with digits read as those digits.
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Spaces, dashes (phones turn "-" into en or em dashes), dots and underscores are separators.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212_.,]+")


def new_code() -> str:
    """A fresh receipt code in normal form (16 characters, no separators)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """Groups of four joined by dashes, as shown to the student: `7K3M-QX2P-...`."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def canonical_code(raw: str) -> str:
    """What was typed with case, separators and look-alike letters folded; maybe not a code."""
    text = unicodedata.normalize("NFKC", raw).upper().translate(_CONFUSABLE)
    return _SEPARATORS.sub("", text)


def normalize_code(raw: str) -> str | None:
    """The normal form of a typed code, or None when it cannot be a receipt code."""
    code = canonical_code(raw)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


@cache
def wordlist() -> tuple[str, ...]:
    """The EFF long wordlist as shipped by the `diceware` package (7,776 words)."""
    path = get_wordlist_path(WORDLIST_NAME)
    if path is None:  # pragma: no cover - the package ships it
        raise RuntimeError(f"diceware wordlist {WORDLIST_NAME!r} is missing")
    source = WordList(path)
    try:
        words = tuple(str(w) for w in source)
    finally:
        source.fd.close()
    return words


def new_passphrase(words: int = PASSPHRASE_WORDS) -> str:
    """Words drawn uniformly with the OS's CSPRNG, joined by single spaces."""
    pool = wordlist()
    return " ".join(secrets.choice(pool) for _ in range(words))


def normalize_passphrase(raw: str) -> str:
    """Case, width and separators do not matter: `Apple-Tree  x` equals `apple tree x`."""
    text = unicodedata.normalize("NFKC", raw).casefold()
    return " ".join(part for part in _SEPARATORS.split(text) if part)


def code_bits() -> float:
    return CODE_LENGTH * math.log2(len(ALPHABET))


def passphrase_bits(words: int = PASSPHRASE_WORDS) -> float:
    return words * math.log2(len(set(wordlist())))
