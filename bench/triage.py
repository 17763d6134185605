"""Triage speed: prints figures (not a test). Targets: median <= 1 ms a tip (rules and model),
a 10 KB message <= 20 ms, the model loads in <= 1 s.

.venv/bin/python bench/triage.py [TIPS.jsonl]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from tipline.triage import classify, default_rules
from tipline.triage.learned import MODEL_PATH, default_model

DEFAULT_TIPS = Path(__file__).resolve().parents[1] / "tipline/triage/corpus/train/tips_public.jsonl"
ROUNDS = 20


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_TIPS
    texts = [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]

    start = time.perf_counter()
    rules = default_rules()
    print(f"rules loaded: {(time.perf_counter() - start) * 1000:.0f} ms (once)")
    start = time.perf_counter()
    phrases = rules.warm()
    print(
        f"{phrases} phrases compiled: {(time.perf_counter() - start) * 1000:.0f} ms "
        "(once, as the web and worker processes do when they load the rules)"
    )
    start = time.perf_counter()
    default_model()
    print(
        f"model loaded: {(time.perf_counter() - start) * 1000:.0f} ms (once; target <= 1 s), "
        f"{MODEL_PATH.stat().st_size / 1e6:.2f} MB in the package"
    )

    for text in texts:  # warm the per-word caches as a long-running worker would be
        classify(text)
    per_tip = []
    for _ in range(ROUNDS):
        for text in texts:
            start = time.perf_counter()
            classify(text)
            per_tip.append(time.perf_counter() - start)
    per_tip.sort()
    print(
        f"{len(texts)} tips x {ROUNDS}: median {statistics.median(per_tip) * 1000:.3f} ms, "
        f"p95 {per_tip[int(len(per_tip) * 0.95)] * 1000:.3f} ms, "
        f"max {per_tip[-1] * 1000:.3f} ms  (target: median <= 1 ms)"
    )

    big = " ".join(texts)
    big = (big * (10_240 // len(big) + 1))[:10_240]
    cold = []
    for k in range(ROUNDS):  # words never seen before, different each time: nothing cached
        text = " ".join(f"{word[::-1]}q{k}" for word in big.split())[:10_240]
        start = time.perf_counter()
        classify(text)
        cold.append(time.perf_counter() - start)
    runs = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        classify(big)
        runs.append(time.perf_counter() - start)
    print(
        f"10 KB message: median {statistics.median(runs) * 1000:.1f} ms, "
        f"best {min(runs) * 1000:.1f} ms; of words never seen: median "
        f"{statistics.median(cold) * 1000:.1f} ms, max {max(cold) * 1000:.1f} ms  "
        "(target: <= 20 ms)"
    )


if __name__ == "__main__":
    main()
