"""Triage of tips: severity, category and language, with reasons staff can read.

Pure code: no Flask, database, queue or network. The rules are data (`rules/*.toml`), loaded
once per process; a district adds words through its `[triage]` table (see `load_rules`). A
learned model (`model/linear.json.gz`, plain data) may raise the rules' verdict, never lower it.
"""

from tipline.triage.classifier import detect_language
from tipline.triage.evaluate import EvalReport, LabelScore, Miss, evaluate
from tipline.triage.layered import classify
from tipline.triage.ruleset import RuleSet, default_rules, load_rules
from tipline.triage.verdict import CATEGORIES, SEVERITIES, Span, TriageRulesError, Verdict

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "EvalReport",
    "LabelScore",
    "Miss",
    "RuleSet",
    "Span",
    "TriageRulesError",
    "Verdict",
    "classify",
    "default_rules",
    "detect_language",
    "evaluate",
    "load_rules",
]
