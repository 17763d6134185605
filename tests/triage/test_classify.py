"""What staff see: severity, category, language and reasons for tips as students write them."""

from __future__ import annotations

import pytest

from tipline.triage import CATEGORIES, SEVERITIES, Verdict
from tipline.triage.classifier import classify  # the rules layer alone: these test the rules


def labels(text: str) -> tuple[str, str]:
    verdict = classify(text)
    return verdict.severity, verdict.category


def test_dads_thing_from_the_safe_pages_the_sro() -> None:
    text = "bringing his dad's thing tomorrow, the one from the safe"
    assert labels(text) == ("critical", "weapon")


@pytest.mark.parametrize(
    "text",
    [
        "that test killed me",
        "we shot some hoops",
        "we killed it at the talent show 🔥",
        "this test is killing me fr",
        "im dying of laughter 💀",
        "that movie had a bomb scene and it was kinda fire",
        "the new tacos are the bomb",
        "the nachos are fire 🔥🔥",
        "gonna murder this essay tonight, wish me luck",
        "my knife skills in culinary class are crazy 🔪",
        "went hunting with my dad and got my first deer",
        "we had a nerf gun war at my cousins lol",
        "shoot me a text when practice ends",
        "shoooot i forgot my gym clothes",
        "el examen de química me mató jaja",
        "me muero de risa con ese video",
        "la comida de hoy estuvo bomba",
    ],
)
def test_harmless_idioms_do_not_wake_anyone(text: str) -> None:
    assert classify(text).severity == "low"


@pytest.mark.parametrize(
    "text",
    [
        "im bringing a gun tomorrow and shooting everyone in 3rd period lol jk",
        "jk jk but he really is bringing the AR tmrw",
        "lmao hes gonna shoot up the pep rally friday",
        "idk if its real but he has a gun in his locker right now",
        "probably nothing but there's a knife in kaylas backpack and she said after lunch",
    ],
)
def test_jokes_and_hedges_never_lower_a_life_safety_threat(text: str) -> None:
    verdict = classify(text)
    assert verdict.severity == "critical"
    assert any("never lower" in reason for reason in verdict.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "im not going to kill myself tonight",
        "he's not gonna shoot up the school tomorrow, he said so",
        "i dont want to die lol",
        "not saying he will bring a gun",
    ],
)
def test_negations_keep_a_life_safety_match_at_high_or_above(text: str) -> None:
    assert classify(text).severity in ("critical", "high")


def test_not_joking_is_not_a_negation() -> None:
    assert labels("he's not joking, he's gonna shoot up the school tomorrow") == (
        "critical",
        "weapon",
    )


@pytest.mark.parametrize(
    ("calm", "raised", "what"),
    [
        ("he said he will kill her", "he said he will kill her tomorrow", "a time ahead"),
        ("he has a knife", "he has a knife in the cafeteria right now", "a place and now"),
        (
            "he says he has a gun",
            "he says he has a gun, his name is cole, 11th grade",
            "a named person",
        ),
        (
            "jake keeps saying he's gonna make them pay",
            "jake keeps saying he's gonna make them pay, he has a glock",
            "a named weapon",
        ),
        ("she wants to die", "she wants to die and she has the pills ready", "the means"),
    ],
)
def test_time_place_person_weapon_and_means_raise_severity(
    calm: str, raised: str, what: str
) -> None:
    order = SEVERITIES[::-1]
    assert order.index(classify(raised).severity) > order.index(classify(calm).severity), what


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("last saturday at a party his cousin pulled a gun on somebody", "high"),
        ("there was a fight at lunch yesterday, nobody got hurt", "normal"),
        ("2 girls fought after school on tuesday, both are fine", "normal"),
        ("someone brought a pocket knife to the game last week, didnt do anything", "high"),
    ],
)
def test_a_past_event_without_injury_does_not_reach_critical(text: str, expected: str) -> None:
    assert classify(text).severity == expected


def test_a_past_event_with_someone_hurt_now_is_critical() -> None:
    assert classify("he got stabbed earlier and hes bleeding out behind the gym").severity == (
        "critical"
    )


@pytest.mark.parametrize(
    ("text", "severity", "category"),
    [
        ("theres a kid with a gun in room 114 right now", "critical", "weapon"),
        ("he posted pics of his rifle on his story, no date or anything", "high", "weapon"),
        (
            "theyre beating a kid up in the locker room right now, hes not moving",
            "critical",
            "violence",
        ),
        ("some seniors said theyll jump him after school friday", "high", "violence"),
        ("there was a fight at the bus stop yesterday, everyone is ok", "normal", "violence"),
        ("i took a bunch of my moms pills and i feel dizzy", "critical", "self_harm"),
        ("sometimes i wish i wouldnt wake up", "high", "self_harm"),
        ("my friend has been cutting herself again", "high", "self_harm"),
        ("my stepdad hits me when he drinks", "high", "abuse"),
        ("the coach keeps texting a freshman and told her to keep it a secret", "high", "abuse"),
        ("kids keep calling my friend names and making memes of her", "normal", "bullying"),
        ("ppl vape in the 2nd floor bathroom every period", "normal", "drugs"),
        ("someone is selling pressed percs with fent at lunch", "high", "drugs"),
        ("somebody stole my airpods from my locker", "normal", "other"),
        ("my little sister never came home from school and her phone is off", "critical", "other"),
        ("what time does the library open", "low", "other"),
    ],
)
def test_each_category_and_severity(text: str, severity: str, category: str) -> None:
    assert labels(text) == (severity, category)


@pytest.mark.parametrize(
    ("text", "severity", "category"),
    [
        ("mañana trae la pistola de su tío para el 3er periodo", "critical", "weapon"),
        (
            "hay un chavo en el estacionamiento con una pistola en la cintura ahorita",
            "critical",
            "weapon",
        ),
        (
            "mi compañero trae una navaja en la mochila y dice que hoy va a picar a alguien",
            "critical",
            "weapon",
        ),
        ("dicen que van a poner una bomba en la escuela el lunes", "critical", "weapon"),
        ("un chavo subió un video con una pistola, no creo que la traiga", "high", "weapon"),
        ("me quiero matar esta noche, ya tengo las pastillas", "critical", "self_harm"),
        ("mi amiga se va a aventar del puente ahorita, no contesta", "critical", "self_harm"),
        ("a veces quiero desaparecer, no tengo un plan", "high", "self_harm"),
        ("mi amiga dejó de comer y se desmayó en educación física", "high", "self_harm"),
        ("mi amigo se está cortando los brazos otra vez", "high", "self_harm"),
        ("están golpeando a un niño en el baño ahorita y está sangrando", "critical", "violence"),
        ("unos de otra escuela dicen que van a golpear a mi primo el viernes", "high", "violence"),
        ("ayer hubo una pelea en la cancha pero nadie salió lastimado", "normal", "violence"),
        ("mi papá le está pegando a mi mamá ahorita, tengo miedo", "critical", "abuse"),
        ("mi padrastro me pega con el cinturón cuando toma", "high", "abuse"),
        ("mi tío me toca cuando mis papás no están", "high", "abuse"),
        (
            "un maestro le manda mensajes a mi amiga de noche y le dice que no le cuente a nadie",
            "high",
            "abuse",
        ),
        ("se burlan de mí porque no hablo bien inglés", "normal", "bullying"),
        ("unas niñas le dicen a mi hermana que es fea todos los días", "normal", "bullying"),
        ("hay chavas vapeando en el baño de las niñas", "normal", "drugs"),
        ("venden pastillas con fentanilo afuera de la escuela", "high", "drugs"),
        ("me robaron el celular en el vestidor", "normal", "other"),
        ("rayaron los carros de los maestros", "normal", "other"),
        ("mi hermano de 12 años no llegó a la casa y nadie sabe dónde está", "critical", "other"),
        ("hola, ¿esto es anónimo?", "low", "other"),
        ("perdón, número equivocado", "low", "other"),
    ],
)
def test_spanish_tips_are_triaged_like_english_ones(
    text: str, severity: str, category: str
) -> None:
    verdict = classify(text)
    assert (verdict.severity, verdict.category, verdict.language) == (severity, category, "es")


@pytest.mark.parametrize(
    ("text", "severity", "category"),
    [
        ("diego dijo que mañana trae la pistola, he's not playing bro", "critical", "weapon"),
        (
            "mi mejor amiga dice que se está cortando otra vez, she said she wants to die",
            "high",
            "self_harm",
        ),
        (
            "las de 9no están haciendo memes de mi amiga, she's crying every day",
            "normal",
            "bullying",
        ),
    ],
)
def test_mixed_english_and_spanish_messages(text: str, severity: str, category: str) -> None:
    assert labels(text) == (severity, category)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("he said he is bringing it tomorrow", "en"),
        ("dijo que mañana la va a traer a la escuela", "es"),
        ("", "en"),
        # no Spanish frequent word ("me" is an English one), but a Spanish rule matches: the
        # student is answered in Spanish
        ("no aguanto más, me quiero morir", "es"),
        ("me quiero morir", "es"),
        ("he has a pistola in his bag", "en"),
    ],
)
def test_language_is_detected(text: str, language: str) -> None:
    assert classify(text).language == language


def test_language_can_be_given() -> None:
    assert classify("ok", lang="es").language == "es"
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        classify("ok", lang="fr")


def test_reasons_say_in_plain_words_what_matched() -> None:
    verdict = classify("Jayden has a GUN in his backpack RIGHT NOW, rm 212")
    assert verdict.reasons[0] == 'a gun is mentioned: "GUN"'
    assert 'happening now: "RIGHT NOW"' in verdict.reasons
    assert any(r.startswith("a place is named") and '"rm 212"' in r for r in verdict.reasons)


def test_reasons_explain_a_harmless_reading() -> None:
    verdict = classify("we shot some hoops after school")
    assert verdict.severity == "low"
    assert verdict.reasons == ("no safety words or patterns matched",)
    masked = classify("gonna murder this essay tonight")
    assert masked.severity == "low"
    assert masked.reasons == (
        "no safety words or patterns matched",
        'read as an idiom, not a threat: "murder this essay"',
    )


def test_verdict_serializes_for_the_cli_and_storage() -> None:
    data = classify("kid with a knife at the bus loop now").to_dict()
    assert set(data) == {"severity", "category", "language", "reasons", "spans"}
    assert data["severity"] in SEVERITIES
    assert data["category"] in CATEGORIES
    assert all(set(span) == {"start", "end", "text", "rule"} for span in data["spans"])


def test_empty_and_noise_texts_are_low() -> None:
    assert classify("") == Verdict(
        "low", "other", "en", ("no safety words or patterns matched",), ()
    )
    assert labels("🙂") == ("low", "other")


def test_threat_at_the_end_of_a_long_message_is_found() -> None:
    text = "the cafeteria pizza was cold again and the wifi is slow. " * 180
    assert len(text) > 10_000
    assert labels(text + "also he has a gun in his locker right now") == ("critical", "weapon")
