"""The audit page (/admin/audit) and its CSV export: who reads what, filters, pages, the CSV
cells a spreadsheet cannot run, and the reading itself on record."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from tests.conftest import EXAMPLE_CONFIG
from tests.support.admin import LOGINS, AuthActions, make_tip
from tipline.db import utcnow
from tipline.district.config import load_district
from tipline.district.sync import sync_district
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, Tip, User
from tipline.staff.auditlog import PAGE_SIZE, csv_cell
from tipline.vault import audit

PHONE = "+15557654321"
TEXT = "someone is selling vapes in the B hall"


def entry(app: Flask, actor: str, action: str, tip_id: str | None = None, **detail: object) -> int:
    with app.app_context():
        event = audit.record(dbsession(), actor, action, tip_id, **detail)
        db.session.commit()
        return event.id


def tips(app: Flask) -> tuple[str, str]:
    """One tip at lincoln, one at washington, each with an entry of its own."""
    lincoln = make_tip(app, TEXT, "lincoln", phone=PHONE)
    washington = make_tip(app, TEXT, "washington")
    entry(app, "staff:ruiz", "tip.noted", lincoln)
    entry(app, "staff:nguyen", "tip.noted", washington)
    return lincoln, washington


def rows(app: Flask, auth: AuthActions, query: str = "") -> list[dict[str, str]]:
    response = auth.client.get("/admin/audit.csv" + query)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


# -- who reads what -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sees_lincoln", "sees_washington"),
    [
        ("admin", True, False),
        ("other_admin", False, True),
        ("district", True, True),
    ],
)
def test_admins_read_their_schools_entries_and_district_reads_all(
    app: Flask, auth: AuthActions, name: str, sees_lincoln: bool, sees_washington: bool
) -> None:
    lincoln, washington = tips(app)
    auth.login_as(name)
    page = auth.client.get("/admin/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert (f"/admin/tips/{lincoln}" in html) is sees_lincoln
    assert (f"/admin/tips/{washington}" in html) is sees_washington
    assert '<div class="table-wrap">' in html
    assert PHONE not in html
    assert TEXT not in html
    tip_ids = {r["tip_id"] for r in rows(app, auth)}
    assert (lincoln in tip_ids) is sees_lincoln
    assert (washington in tip_ids) is sees_washington


@pytest.mark.parametrize("name", ["sro", "counselor"])
def test_other_roles_are_refused_the_page_and_the_export(auth: AuthActions, name: str) -> None:
    auth.login_as(name)
    assert auth.client.get("/admin/audit").status_code == 403
    assert auth.client.get("/admin/audit.csv").status_code == 403
    assert "/admin/audit" not in auth.client.get("/admin/").get_data(as_text=True)


def test_signed_out_the_page_asks_for_sign_in(app: Flask) -> None:
    response = app.test_client().get("/admin/audit")
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]
    assert app.test_client().get("/admin/audit.csv").status_code == 302


def test_an_admin_reads_the_sign_ins_of_their_schools_logins_only(
    app: Flask, auth: AuthActions
) -> None:
    """Entries naming no tip: a login's sign-in is read by the admins of its schools."""
    auth.create_role("other_admin")
    auth.login_as("admin")
    with app.app_context():
        ids = {email: uid for email, uid in dbsession().execute(select(User.email, User.id))}
    admin_id, other_id = ids[LOGINS["admin"][0]], ids[LOGINS["other_admin"][0]]
    entry(app, f"user:{other_id}", "login.success", step="totp")
    found = rows(app, auth, "?action=login.success")
    assert {r["actor"] for r in found} == {f"user:{admin_id}"}


def test_a_tip_the_admin_may_not_view_is_left_out(
    app: Flask, auth: AuthActions, tmp_path: Path
) -> None:
    """The district file can hide a category from a role: its tips' entries go with it."""
    path = tmp_path / "district.toml"
    path.write_text(
        EXAMPLE_CONFIG.read_text()
        + '\n[[access]]\nrole = "admin"\ncategories = ["drugs"]\nactions = []\n'
    )
    with app.app_context():
        sync_district(dbsession(), load_district(path))
        db.session.commit()
    lincoln, _ = tips(app)
    hidden = make_tip(app, TEXT, "lincoln")
    with app.app_context():
        dbsession().execute(update(Tip).where(Tip.id == hidden).values(category="drugs"))
        dbsession().execute(update(Tip).where(Tip.id == lincoln).values(category="other"))
        db.session.commit()
    entry(app, "staff:ruiz", "tip.noted", hidden)
    auth.login_as("admin")
    tip_ids = {r["tip_id"] for r in rows(app, auth)}
    assert lincoln in tip_ids
    assert hidden not in tip_ids


# -- filters, pages, export ---------------------------------------------------------------------


def test_filters_by_school_actor_action_and_dates(app: Flask, auth: AuthActions) -> None:
    lincoln, washington = tips(app)
    auth.login_as("district")
    old = entry(app, "staff:ruiz", "tip.status", lincoln, to="open")
    with app.app_context():
        dbsession().execute(
            update(AuditEvent).where(AuditEvent.id == old).values(at=utcnow() - timedelta(days=10))
        )
        db.session.commit()

    assert {r["tip_id"] for r in rows(app, auth, "?school=washington")} == {washington}
    assert {r["actor"] for r in rows(app, auth, "?actor=staff:ruiz")} == {"staff:ruiz"}
    assert {r["action"] for r in rows(app, auth, "?action=tip.noted")} == {"tip.noted"}
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    recent = {r["id"] for r in rows(app, auth, f"?from={since}")}
    assert str(old) not in recent
    assert recent
    until = (utcnow() - timedelta(days=5)).date().isoformat()
    assert [r["id"] for r in rows(app, auth, f"?to={until}")] == [str(old)]


def test_an_actor_filter_takes_an_email(app: Flask, auth: AuthActions) -> None:
    user_id = auth.login_as("district")
    found = rows(app, auth, f"?actor={LOGINS['district'][0]}&action=login.success")
    assert found
    assert {r["actor"] for r in found} == {f"user:{user_id}"}


def test_a_bad_date_is_said_and_ignored(auth: AuthActions) -> None:
    auth.login_as("admin")
    page = auth.client.get("/admin/audit?from=yesterday&page=x")
    assert page.status_code == 200
    assert "is not a date like 2026-03-09" in page.get_data(as_text=True)


def test_the_log_pages_newest_first(app: Flask, auth: AuthActions) -> None:
    auth.login_as("district")
    first = entry(app, "system", "bench.first")
    for i in range(PAGE_SIZE + 5):
        entry(app, "system", "bench.fill", n=i)
    page1 = auth.client.get("/admin/audit").get_data(as_text=True)
    assert "Older</a>" in page1
    assert "Newer</a>" not in page1
    assert f'id="entry-{first}"' not in page1
    page2 = auth.client.get("/admin/audit?page=2").get_data(as_text=True)
    assert f'id="entry-{first}"' in page2
    assert "Newer</a>" in page2


def test_the_export_is_as_stored_and_no_cell_is_a_formula(app: Flask, auth: AuthActions) -> None:
    user_id = auth.login_as("district")
    entry(app, '=HYPERLINK("http://evil")', "+cmd", None, note="@SUM(1)")
    entry(app, "-2+3", "tip.noted")
    found = rows(app, auth)
    assert list(found[0]) == [
        "id", "at", "actor", "action", "school", "tip_id", "tip_code", "detail", "chain_seq",
        "hash",
    ]  # fmt: skip
    assert f"user:{user_id}" in {r["actor"] for r in found}  # an id, never the email
    assert LOGINS["district"][0] not in str(found)
    for row in found:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), row
    assert '\'=HYPERLINK("http://evil")' in {r["actor"] for r in found}
    assert "'-2+3" in {r["actor"] for r in found}
    assert "'+cmd" in {r["action"] for r in found}


@pytest.mark.parametrize(
    ("raw", "cell"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@a", "'@a"), ("a=b", "a=b"), (None, "")],
)
def test_csv_cells(raw: str | None, cell: str) -> None:
    assert csv_cell(raw) == cell


# -- the reading is on record -------------------------------------------------------------------


def test_viewing_and_exporting_are_audited_with_ids_only(app: Flask, auth: AuthActions) -> None:
    user_id = auth.login_as("admin")
    other = auth.create_role("other_admin")
    auth.client.get(f"/admin/audit?actor={LOGINS['other_admin'][0]}&action=tip.noted&page=2")
    auth.client.get("/admin/audit.csv?school=lincoln").get_data()
    with app.app_context():
        events = (
            dbsession()
            .scalars(
                select(AuditEvent)
                .where(AuditEvent.action.in_(("audit.viewed", "audit.exported")))
                .order_by(AuditEvent.id)
            )
            .all()
        )
        seen = [(e.actor, e.action, e.detail) for e in events]
    assert seen == [
        (
            f"user:{user_id}",
            "audit.viewed",
            {"filter": {"actor": f"user:{other}", "action": "tip.noted", "page": "2"}},
        ),
        (f"user:{user_id}", "audit.exported", {"filter": {"school": "lincoln"}}),
    ]
