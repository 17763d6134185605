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
    assert set(data["thresholds"]) == {"critical", "high"}


def test_the_model_is_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"triage/model/*.json.gz"' in pyproject


def test_the_model_never_lowers_the_rules_verdict(model: LinearModel) -> None:
    """Over every training text, and over each severity the model could have said."""
    ruleset = default_rules()
    for example in read_corpus(TRAIN):
        norm = ruleset.normalizer.normalize(example.text)
        ruled = classify_normalized(norm, ruleset)
        prediction = model.predict(norm.text)
        combined = combine(ruled, prediction)
        assert LEVELS[combined.severity] >= LEVELS[ruled.severity], example.source
        assert LEVELS[combined.severity] >= LEVELS[prediction.severity], example.source
        if ruled.spans and combined.severity == ruled.severity:
            assert combined.category == ruled.category, example.source
        for severity in LEVELS:
            forced = Prediction(
                severity, prediction.category, prediction.severity_probs, prediction.category_probs
            )
            assert LEVELS[combine(ruled, forced).severity] >= LEVELS[ruled.severity]


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
