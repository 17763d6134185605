"""The learned layer: raises and never lowers, plain data, deterministic, works from anywhere."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.triage.conftest import TRAIN
from tipline.triage import classify, default_rules
from tipline.triage.classifier import classify as rules_classify
from tipline.triage.classifier import classify_normalized
from tipline.triage.concepts import default_concepts
from tipline.triage.corpus import read_corpus
from tipline.triage.layered import combine
from tipline.triage.learned import MODEL_PATH, LinearModel, Prediction, default_model
from tipline.triage.verdict import LEVELS


@pytest.fixture(scope="module")
def model() -> LinearModel:
    packaged = default_model()
    assert packaged is not None
    return packaged


def test_the_packaged_model_is_small_plain_json_without_pickle() -> None:
    assert MODEL_PATH.stat().st_size <= 5_000_000
    data = json.loads(gzip.decompress(MODEL_PATH.read_bytes()))
    assert data["words"] == sorted(data["words"])
    assert data["chars"] == sorted(data["chars"])
    assert set(data["thresholds"]) == {"critical", "critical_urgent", "high"}


def test_the_model_is_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"triage/model/*.json.gz"' in pyproject


def test_the_model_never_lowers_the_rules_verdict(model: LinearModel) -> None:
    """Over every training text, and over each severity the model could have said: the verdict
    is at least the rules' (a benign frame may read a rule's critical as high, never lower), and
    at least the model's."""
    ruleset = default_rules()
    concepts = default_concepts()
    for example in read_corpus(TRAIN):
        norm = ruleset.normalizer.normalize(example.text)
        ruled = classify_normalized(norm, ruleset)
        found = concepts.find(norm.text)
        prediction = model.predict(norm.text, found, ruled)
        floor = LEVELS[ruled.severity]
        if floor == LEVELS["critical"] and found.benign and not found.immediate:
            floor = LEVELS["high"]
        for severity in LEVELS:
            forced = Prediction(
                severity, prediction.category, prediction.severity_probs, prediction.category_probs
            )
            combined = combine(ruled, forced, found)
            assert LEVELS[combined.severity] >= max(floor, LEVELS[severity]), example.source
            if ruled.spans and LEVELS[combined.severity] <= floor:  # not raised: rules' category
                assert combined.category == ruled.category, example.source


def test_hedges_never_lower_and_a_benign_frame_stops_at_high() -> None:
    assert classify("jk lol he has a gun in his backpack right now in room 12").severity == (
        "critical"
    )
    ruled = rules_classify("in fortnite he said he will shoot everyone at school tomorrow")
    verdict = classify("in fortnite he said he will shoot everyone at school tomorrow")
    assert LEVELS[verdict.severity] >= min(LEVELS[ruled.severity], LEVELS["high"])


def test_an_unplaced_harm_is_rounded_up_to_high() -> None:
    found = default_concepts().find("there is a lighter and smoke behind the portables .")
    assert "fire" in found.harms
    ruled = rules_classify("zzz")
    unsure = Prediction(
        "low",
        "other",
        {"critical": 0.1, "high": 0.1, "normal": 0.3, "low": 0.5},
        {"other": 1.0},
    )
    verdict = combine(ruled, unsure, found)
    assert verdict.severity == "high"
    assert verdict.reasons[0].startswith("concepts: mentions fire that neither layer")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("something with a timer taped under the bleachers", "weapon"),
        ("moms boyfriend is drunk and driving us home with my baby brother in the back", "drugs"),
    ],
)
def test_a_raise_by_the_model_says_so_in_the_first_reason(text: str, category: str) -> None:
    ruled = rules_classify(text)
    verdict = classify(text)
    assert LEVELS[ruled.severity] < LEVELS["critical"]
    assert (verdict.severity, verdict.category) == ("critical", category)
    assert verdict.reasons[0].startswith("model: reads like tips about")
    assert "(critical 0." in verdict.reasons[0]


def test_model_none_gives_the_rules_alone() -> None:
    text = "theres a guy in a grey van by the playground telling the little kids to get in"
    assert classify(text, model=None) == rules_classify(text)


def test_training_twice_gives_identical_bytes(tmp_path: Path) -> None:
    from tipline.triage.train import train_model, write_model  # noqa: PLC0415

    examples = read_corpus(TRAIN)[::12]  # a small slice keeps this fast
    first, second = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    write_model(train_model(examples), first)
    write_model(train_model(examples), second)
    assert first.read_bytes() == second.read_bytes()
    assert LinearModel.load(first).predict("gun in 114 now").severity_probs


def test_triage_works_from_another_directory_offline() -> None:
    script = Path(sys.executable).parent / "tipline"
    result = subprocess.run(
        [str(script), "triage", "he has a gun in his backpack right now, room 12"],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "NO_PROXY": "*"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["severity"] == "critical"


def test_a_text_the_model_knows_nothing_of_is_left_to_the_rules(model: LinearModel) -> None:
    prediction = model.predict("qzxv wkjq")
    assert (prediction.severity, prediction.category) == ("low", "other")
    assert classify("qzxv wkjq") == rules_classify("qzxv wkjq")


def _ramble(size: int, seed: int) -> str:
    """A rambling, harmless message of words mostly never seen before (a long text costs the
    most when its words are new), about `size` characters."""
    words = ["so", "anyway", "the", "bus", "was", "late", "and", "my", "cousin", "said", "that"]
    out: list[str] = []
    n = 0
    while sum(map(len, out)) + len(out) < size:
        out.append(f"{words[n % len(words)]} blorv{seed}x{n}")
        n += 1
    return " ".join(out)


@pytest.mark.parametrize(
    ("threat", "category"),
    [
        ("anyway he said hes bringing his dads gun to school tomorrow to shoot people", "weapon"),
        ("y ya me despedi, esta noche me voy a matar con las pastillas de mi mama", "self_harm"),
    ],
)
def test_a_threat_at_the_end_of_a_10_kb_rambling_message_is_still_critical(
    threat: str, category: str
) -> None:
    text = f"{_ramble(10_000, len(threat))}. {threat}"
    assert len(text) > 10_000
    verdict = classify(text)
    assert (verdict.severity, verdict.category) == ("critical", category)


def test_warming_the_rules_compiles_every_phrase_once_and_changes_no_verdict() -> None:
    from tipline.triage.ruleset import RuleSet, _default_raw  # noqa: PLC0415

    fresh = RuleSet(_default_raw())
    text = "he has a gun in his backpack right now, room 12"
    before = rules_classify(text, rules=fresh)
    assert fresh.warm() > 1000
    assert fresh.warm() == 0
    assert rules_classify(text, rules=fresh) == before


def test_the_model_reads_the_rules_verdict_as_words() -> None:
    from tipline.triage.learned import with_concepts  # noqa: PLC0415

    ruled = rules_classify("he has a gun in his backpack right now, room 12")
    words = with_concepts("he has a gun", None, ruled).split()
    assert {"§rcritical", "§rcweapon", "§idweapon_firearm"} <= set(words)
    assert with_concepts("hi", None, rules_classify("hi")) == "hi §rlow"


def test_the_likeliest_class_being_serious_makes_the_model_say_high_at_least(
    model: LinearModel,
) -> None:
    p = {"critical": 0.05, "high": 0.45, "normal": 0.2, "low": 0.3}
    assert p["critical"] + p["high"] < model.thresholds["high"]
    assert model.severity_of(p) == "high"


def test_a_harm_to_a_life_rounds_up_however_sure_the_model_is() -> None:
    text = "im on the bridge. im sorry. tell ms greene thanks for trying"
    found = default_concepts().find(default_rules().normalizer.normalize(text).text)
    assert "self_harm" in found.harms
    sure_harmless = Prediction(
        "low",
        "other",
        {"critical": 0.01, "high": 0.01, "normal": 0.08, "low": 0.9},
        {"other": 1.0},
    )
    assert combine(rules_classify("zzz"), sure_harmless, found).severity == "high"


def test_a_benign_frame_does_not_stop_rounding_up_a_harm_to_someone_vulnerable() -> None:
    text = "the kid in the wheelchair was left alone upstairs in the fire drill, smoke"
    found = default_concepts().find(default_rules().normalizer.normalize(text).text)
    assert "fire" in found.harms
    assert found.benign
    assert found.vulnerable
    unsure = Prediction(
        "low",
        "other",
        {"critical": 0.1, "high": 0.1, "normal": 0.3, "low": 0.5},
        {"other": 1.0},
    )
    assert combine(rules_classify("zzz"), unsure, found).severity == "high"


SURE_HARMLESS = Prediction(
    "low", "other", {"critical": 0.01, "high": 0.01, "normal": 0.08, "low": 0.9}, {"other": 1.0}
)


def _concepts(text: str):  # type: ignore[no-untyped-def]
    return default_concepts().find(default_rules().normalizer.normalize(text).text)


@pytest.mark.parametrize(
    "text",
    [
        "my friend hit a vape pen someone gave him and now hes limp and not responding",
        "shes turning blue in the bathroom by the gym",
        "somebody locked a 6th grader in the equipment shed and we can hear him",
        "mi amigo no respira bien y se puso azul, baño de hombres",
        "hay un niño encerrado en el cuarto de limpieza, le pusieron seguro",
        "my uncle wont let me leave his room",
    ],
)
def test_a_life_in_danger_now_is_critical_whatever_either_layer_said(text: str) -> None:
    found = _concepts(text)
    assert found.in_crisis, found
    verdict = combine(rules_classify("zzz"), SURE_HARMLESS, found)
    assert verdict.severity == "critical"
    assert verdict.reasons[0].startswith("concepts: a life in danger now")


@pytest.mark.parametrize(
    "text",
    [
        "she had a seizure yesterday in class but shes ok now",  # over
        "what if someone is not breathing, what do i do if that happens",  # only asked
        "in the movie the guy is locked in the trunk and cant get out",  # a benign frame
        "lol i almost stopped breathing laughing",  # no crisis words: a figure of speech
    ],
)
def test_a_crisis_that_is_over_asked_about_or_framed_raises_nothing(text: str) -> None:
    found = _concepts(text)
    assert not found.in_crisis
    assert combine(rules_classify("zzz"), SURE_HARMLESS, found).severity != "critical"


def test_a_hedge_never_settles_a_crisis() -> None:
    found = _concepts("jk lol but fr he wont wake up and his lips are blue")
    assert found.in_crisis
    assert combine(rules_classify("zzz"), SURE_HARMLESS, found).severity == "critical"
