"""SMS keywords: carrier opt-out/help words (never tips) and NEW/NUEVO (start a fresh tip)."""

from __future__ import annotations

import re

# Twilio answers these itself on long codes and toll-free numbers (and blocks further sends
# after an opt-out, error 21610), then still forwards them to the webhook. A tip line must not
# page an officer because a student typed STOP, nor store anything for it.
OPT_OUT = frozenset(
    {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
    | {"ARRET", "PARAR", "ALTO"}
)
# A one-word "yes" is Twilio's opt-in word too: Twilio answers it with its own resubscribe text,
# so even as an answer to a staff question it is not stored as part of the conversation.
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = frozenset({"HELP", "INFO", "AYUDA"})
CARRIER = OPT_OUT | OPT_IN | HELP

NEW_TIP = frozenset({"NEW", "NUEVO", "NUEVA"})

_SPACE = re.compile(r"\s+")
_TRAILING = ".!¡¿?"


def normalize(body: str) -> str:
    """Upper-case, single-spaced, without surrounding space or trailing punctuation."""
    return _SPACE.sub(" ", body).strip().strip(_TRAILING).strip().upper()


def is_carrier_keyword(body: str) -> bool:
    """True when the whole message is an opt-out, opt-in or help keyword (any case)."""
    return len(body) <= 24 and normalize(body) in CARRIER


def help_language(body: str) -> str | None:
    """ "en" or "es" when the whole message is a help keyword (HELP, INFO, AYUDA), else None."""
    if len(body) > 24:
        return None
    word = normalize(body)
    return None if word not in HELP else "es" if word == "AYUDA" else "en"


def is_new_tip(body: str) -> bool:
    """True when the whole message asks to start a fresh tip (NEW, NUEVO)."""
    return len(body) <= 24 and normalize(body) in NEW_TIP


def new_tip_language(body: str) -> str:
    """The language a NEW request was written in."""
    return "en" if normalize(body) == "NEW" else "es"
