"""What the SMS line answers a student, in English and Spanish."""

from __future__ import annotations

import re

LANGUAGES = ("en", "es")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "received": "{school} tip line: we got your tip. Your tip code is {code}. "
        "Text this number to add more.",
        "danger": "If someone is in danger right now, call 911.",
        "crisis": "You can call or text 988, the 988 Suicide & Crisis Lifeline, any time.",
        "monitored": "This line is monitored {hours}.",
        "added": "Added to your tip {code}.",
        "new": "OK. Your next message will start a new tip.",
        "empty": "Your message was empty. Text what happened to this number.",
        "unavailable": "Sorry, your message could not be received right now. Please text it "
        "again in a few minutes.",
        "help": "{school} tip line: text what is happening; you do not need to give your name. "
        "Reply STOP to stop messages.",
        "break_glass": "In an emergency, two school administrators together can see the number "
        "you text from.",
    },
    "es": {
        "received": "Línea de avisos de {school}: recibimos tu aviso. Tu código es {code}. "
        "Escribe a este número para añadir más.",
        "danger": "Si alguien está en peligro ahora mismo, llama al 911.",
        "crisis": "Línea 988 de Prevención del Suicidio y Crisis: llama o envía un mensaje de "
        "texto al 988, a cualquier hora.",
        "monitored": "Esta línea se atiende: {hours}.",
        "added": "Añadido a tu aviso {code}.",
        "new": "De acuerdo. Tu próximo mensaje iniciará un aviso nuevo.",
        "empty": "Tu mensaje estaba vacío. Escribe lo que pasó a este número.",
        "unavailable": "Lo sentimos, ahora mismo no pudimos recibir tu mensaje. Vuelve a "
        "enviarlo en unos minutos.",
        "help": "Línea de avisos de {school}: escribe lo que pasa; no necesitas dar tu nombre. "
        "Responde ALTO para no recibir más mensajes.",
        "break_glass": "En una emergencia, dos administradores de la escuela juntos pueden ver "
        "el número desde el que escribes.",
    },
}

_DAYS_ES = {
    "mon": "lun",
    "tue": "mar",
    "wed": "mié",
    "thu": "jue",
    "fri": "vie",
    "sat": "sáb",
    "sun": "dom",
}
_DAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)\b", re.IGNORECASE)


def language(lang: str | None) -> str:
    """A language we have replies in; English otherwise."""
    return lang if lang in LANGUAGES else "en"


def hours_in(lang: str, hours: str) -> str:
    """The school's monitored hours ("Mon-Fri 07:00-16:00") with day names in `lang`."""
    if lang != "es":
        return hours
    return _DAY.sub(lambda m: _DAYS_ES[m.group(1).lower()], hours)


def first_reply(lang: str, *, code: str, school: str, monitored: str | None, crisis: bool) -> str:
    """The answer to a new tip: its code, 911, the 988 line on self-harm, the hours."""
    t = TEXTS[language(lang)]
    parts = [t["received"].format(school=school, code=code)]
    if crisis:
        parts.append(t["crisis"])
    parts.append(t["danger"])
    if monitored:
        parts.append(t["monitored"].format(hours=hours_in(language(lang), monitored)))
    return " ".join(parts)


def followup_reply(lang: str, *, code: str, crisis: bool) -> str:
    """The short answer to a follow-up; the 988 line again when it speaks of self-harm."""
    t = TEXTS[language(lang)]
    text = t["added"].format(code=code)
    return f"{text} {t['crisis']}" if crisis else text


def help_reply(lang: str, *, school: str) -> str:
    """The answer to HELP or AYUDA where break-glass is on: what the line is, 911, and that
    two administrators can reveal the number in an emergency."""
    t = TEXTS[language(lang)]
    return " ".join([t["help"].format(school=school), t["danger"], t["break_glass"]])


def new_tip_reply(lang: str) -> str:
    return TEXTS[language(lang)]["new"]


def empty_reply(lang: str) -> str:
    return TEXTS[language(lang)]["empty"]


def unavailable_reply() -> str:
    """The database is down: the text was not stored. Both languages, since none is known."""
    return " ".join(f"{TEXTS[lang]['unavailable']} {TEXTS[lang]['danger']}" for lang in LANGUAGES)
