"""Who sees and does what: every role × category × action cell, through the real admin view.

The expected table is written out here, not read from `district/grants.py`, so a change to
the defaults has to change docs/access.md and this table together.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import EXAMPLE_CONFIG
from tests.support.admin import LIFE_SAFETY, AuthActions, add_attachment, make_alert, make_tip
from tipline.district.config import load_district
from tipline.district.sync import sync_district
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, Tip

FIGHT = "there is going to be a fight after school behind the gym on friday"
CATEGORIES = ("weapon", "violence", "self_harm", "abuse", "bullying", "drugs", "other")
ROLES = ("sro", "admin", "counselor", "district")
ACTIONS = (
    "queue",
    "view",
    "download",
    "reply",
    "note",
    "acknowledge",
    "status",
    "assign",
    "reclassify",
)
EVERYTHING = frozenset(ACTIONS)
COUNSELOR = frozenset({"queue", "view", "download", "reply", "note", "acknowledge", "status"})
# The defaults of docs/access.md, cell by cell (at the login's own schools).
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    **{(role, c): EVERYTHING for role in ("sro", "admin", "district") for c in CATEGORIES},
    **{("counselor", c): COUNSELOR for c in ("self_harm", "abuse", "bullying", "drugs", "other")},
    **{("counselor", c): frozenset() for c in ("weapon", "violence")},  # unless paged
}
# A chain that pages counselors too (by duty and, at the last step, by name).
COUNSELING: dict[str, Any] = {
    "name": "counseling",
    "repeat": 0,
    "steps": [
        {"notify": ["on-duty:sro"], "channels": ["sms"], "wait": 120},
        {"notify": ["staff:garcia"], "channels": ["sms"], "wait": 120},
    ],
}
AUDITED = {
    "view": "tip.viewed",
    "download": "attachment.downloaded",
    "reply": "tip.replied",
    "note": "tip.noted",
    "status": "tip.status",
    "assign": "tip.assigned",
    "reclassify": "tip.reclassified",
}


def tip_of(app: Flask, category: str, school: str = "lincoln", severity: str = "high") -> str:
    tip_id = make_tip(app, FIGHT, school)
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        tip.category, tip.severity = category, severity
        db.session.commit()
    return tip_id


def audit_actions(app: Flask, tip_id: str) -> list[str]:
    with app.app_context():
        return list(
            dbsession().scalars(
                select(AuditEvent.action).where(AuditEvent.tip_id == tip_id).order_by(AuditEvent.id)
            )
        )


def attempt(auth: AuthActions, action: str, tip_id: str, att_id: str, user_id: int) -> int:
    """Do `action` on the tip through the web; the HTTP status (queue: 200 when listed)."""
    base = f"/admin/tips/{tip_id}"
    if action == "queue":
        page = auth.client.get("/admin/?status=all").get_data(as_text=True)
        return 200 if f"/admin/tips/{tip_id}" in page else 404
    if action == "view":
        return auth.client.get(base).status_code
    if action == "download":
        return auth.client.get(f"{base}/attachments/{att_id}").status_code
    forms = {
        "reply": ("/reply", {"reply": "Thank you, we are looking into it."}),
        "note": ("/notes", {"note": "called the dean"}),
        "status": ("/status", {"status": "open", "disposition": ""}),
        "assign": ("/assign", {"user_id": str(user_id)}),
        "reclassify": ("/reclassify", {"severity": "low", "category": "other"}),
        "acknowledge": ("/acknowledge", {}),
    }
    path, data = forms[action]
    return auth.post(base + path, data).status_code


def check_cell(
    app: Flask, auth: AuthActions, role: str, category: str, action: str, policy: dict[str, Any]
) -> tuple[bool, str]:
    """Run one cell; assert the HTTP answer and the audit trail agree. (allowed, tip id)."""
    tip_id = tip_of(app, category)
    att_id = add_attachment(app, tip_id, b"\x89PNG\r\n\x1a\n", "image/png")
    make_alert(app, tip_id, policy=policy)
    user_id = auth.login_as(role)
    status = attempt(auth, action, tip_id, att_id, user_id)
    expected = EXPECTED[(role, category)]
    if policy is COUNSELING and role == "counselor":
        expected = COUNSELOR  # the chain names garcia: weapon and violence tips too
    allowed = action in expected
    if allowed:
        assert status == (200 if action in ("queue", "view", "download") else 302)
    elif "view" in expected:
        assert status == 403
    else:
        assert status == 404  # not 403: a tip the login may not view is no oracle
    trail = audit_actions(app, tip_id)
    if action in AUDITED:
        assert (AUDITED[action] in trail) is allowed, trail
    return allowed, tip_id


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("role", ROLES)
def test_default_access(
    app: Flask, auth: AuthActions, role: str, category: str, action: str
) -> None:
    """Under a chain that names SROs, admins and the district but no counselor."""
    allowed, tip_id = check_cell(app, auth, role, category, action, LIFE_SAFETY)
    if action == "acknowledge" and allowed:
        # Counselors are not named by this chain: their acknowledgement is only "seen".
        expected = "alert.seen" if role == "counselor" else "alert.acked"
        trail = audit_actions(app, tip_id)
        assert expected in trail
        assert ({"alert.seen", "alert.acked"} - {expected}).isdisjoint(trail)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("category", CATEGORIES)
def test_counselor_named_by_the_tips_policy(
    app: Flask, auth: AuthActions, category: str, action: str
) -> None:
    """A chain that names the counselor opens weapon and violence tips to them, and lets
    their acknowledgement stop it."""
    allowed, tip_id = check_cell(app, auth, "counselor", category, action, COUNSELING)
    assert allowed is (action in COUNSELOR)
    if action == "acknowledge":
        assert "alert.acked" in audit_actions(app, tip_id)


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("role", ROLES)
def test_another_schools_tips_are_missing(
    app: Flask, auth: AuthActions, role: str, category: str
) -> None:
    tip_id = tip_of(app, category, "washington")
    make_alert(app, tip_id, policy=COUNSELING)
    auth.login_as(role)
    page = auth.client.get(f"/admin/tips/{tip_id}")
    listed = f"/admin/tips/{tip_id}" in auth.client.get("/admin/?status=all").get_data(True)
    if role == "district":  # sees every school
        assert (page.status_code, listed) == (200, True)
    else:
        assert (page.status_code, listed) == (404, False)


def test_counselor_sees_an_unrouted_weapon_tip_only_if_its_policy_would_page_them(
    app: Flask, auth: AuthActions
) -> None:
    """No alert yet: the policy that would route the tip now decides. In the example a high
    tip goes to "serious" (SROs, admins), a normal one to "school-day" (admin and counselor
    on duty)."""
    high = tip_of(app, "weapon")
    normal = tip_of(app, "weapon", severity="normal")
    auth.login_as("counselor")
    assert auth.client.get(f"/admin/tips/{high}").status_code == 404
    assert auth.client.get(f"/admin/tips/{normal}").status_code == 200


def test_the_district_file_overrides_the_defaults(
    app: Flask, auth: AuthActions, tmp_path: Path
) -> None:
    """Counselors read weapon tips at Lincoln without being paged, but only read them; they
    no longer see drugs tips there."""
    path = tmp_path / "district.toml"
    path.write_text(
        EXAMPLE_CONFIG.read_text()
        + textwrap.dedent(
            """
            [[access]]
            role = "counselor"
            schools = ["lincoln"]
            categories = ["weapon"]
            actions = ["view"]

            [[access]]
            role = "counselor"
            categories = ["drugs"]
            actions = []
            """
        )
    )
    with app.app_context():
        sync_district(dbsession(), load_district(path))
        db.session.commit()
    weapon, drugs = tip_of(app, "weapon"), tip_of(app, "drugs")
    make_alert(app, weapon)
    auth.login_as("counselor")
    assert auth.client.get(f"/admin/tips/{weapon}").status_code == 200
    assert auth.post(f"/admin/tips/{weapon}/notes", {"note": "x"}).status_code == 403
    assert auth.client.get(f"/admin/tips/{drugs}").status_code == 404
    queue = auth.client.get("/admin/?status=all").get_data(as_text=True)
    assert f"/admin/tips/{weapon}" in queue
    assert f"/admin/tips/{drugs}" not in queue
