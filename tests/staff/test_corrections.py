"""Staff reclassifications become labelled examples a district can evaluate its rules on."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from flask import Flask

from tipline.cli import main
from tipline.cli.triage_cmd import triage_cmd
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.intake import records
from tipline.platform.services import services
from tipline.staff import casework
from tipline.staff.accounts import upsert_user
from tipline.triage import classify

TEXT = "there's gonna be a fight at the bus stop after school"


def test_reclassified_tips_export_and_evaluate(
    app: Flask, env: dict[str, str], tmp_path: Path
) -> None:
    with app.app_context():
        session, vault = dbsession(), services(app).vault
        school = records.school_by_slug(session, "lincoln")
        verdict = classify(TEXT)
        tip = records.create_tip(
            session,
            vault,
            school=school,
            text=TEXT,
            source="web",
            verdict=verdict,
            tipster=None,
            now=utcnow(),
        )
        untouched = records.create_tip(
            session,
            vault,
            school=school,
            text="lol hi",
            source="web",
            verdict=classify("lol hi"),
            tipster=None,
            now=utcnow(),
        )
        user, _ = upsert_user(
            session,
            vault,
            email="ap@example.org",
            role="admin",
            password="a long enough password",
            schools=["lincoln"],
        )
        target = "critical" if verdict.severity != "critical" else "high"
        assert casework.reclassify(session, user, tip, target, "violence", utcnow())
        db.session.commit()
        code, untouched_code = tip.code, untouched.code

    out = tmp_path / "corrections.jsonl"
    result = CliRunner().invoke(
        main, ["export-corrections", "-o", str(out)], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {
            "id": f"lincoln-{code}",
            "text": TEXT,
            "severity": target,
            "category": "violence",
            "triage_severity": verdict.severity,
            "triage_category": verdict.category,
        }
    ]
    assert untouched_code not in out.read_text()

    report = CliRunner().invoke(triage_cmd, ["--eval", str(out)], env=env)
    assert report.exit_code == 0, report.output
    detail = report.output.split("combined, in detail\n", 1)[1]
    assert detail.startswith("1 tips")
    assert "category accuracy 1.000" in detail  # staff said violence; triage agrees
