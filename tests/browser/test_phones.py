"""On a 390 px phone no page scrolls sideways: tables scroll inside their own box or stack,
long words (links, hashes, codes) wrap. Screenshots of the tip page and the dashboard are left
in the temporary directory for a person to look at."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from tests.support.admin import AuthActions
from tests.support.browser import (
    PHONE,
    RUIZ_EMAIL,
    Live,
    fits,
    open_followup,
    send_tip,
    sign_in,
)
from tests.support.wait import wait_for
from tipline.extensions import db
from tipline.models import AlertStep, Shift, Staff, Tip

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "anita.patel@example.org"
LONG_URL = "https://example.org/" + "x" * 150 + "?token=" + "9f" * 40
TIP = f"he has a gun in his backpack in the parking lot, he posted it here {LONG_URL}"
SHOTS = Path(tempfile.gettempdir())


def test_no_page_scrolls_sideways_on_a_390_px_phone(
    live: Live, new_page: Callable[..., Any]
) -> None:
    auth = AuthActions(live.app, live.app.test_client())
    auth.create(RUIZ_EMAIL, "sro", ["lincoln"], staff="ruiz")
    auth.create(ADMIN_EMAIL, "admin", ["lincoln"], staff="patel")
    with live.app.app_context():  # nobody covers weekends: the dashboard draws the gaps
        chen = db.session.scalars(select(Staff.id).where(Staff.key == "chen")).one()
        db.session.execute(delete(Shift).where(Shift.staff_id == chen))
        db.session.commit()
    student = new_page(PHONE)
    student.goto(live.url + "/tip/lincoln")
    fits(student, "the tip form")
    receipt, passphrase = send_tip(live, student, TIP)
    fits(student, "the receipt")
    student.goto(live.url + "/followup")
    fits(student, "the follow-up form")

    def paged() -> bool:
        with live.app.app_context():
            found = db.session.query(AlertStep).count() > 0
            db.session.remove()
            return found

    wait_for(paged, 10, "the worker to route the tip")
    with live.app.app_context():
        tip_id = db.session.query(Tip.id).scalar()
        db.session.remove()

    staff = new_page(PHONE)
    staff.goto(live.url + "/admin/login")
    fits(staff, "the sign-in page")
    sign_in(live, staff)
    fits(staff, "the queue")
    staff.goto(f"{live.url}/admin/tips/{tip_id}")
    staff.fill("#reply", "We read it. " + LONG_URL)
    staff.click("button:text-is('Send reply')")
    staff.fill("#note", "Checked the link " + LONG_URL)
    staff.click("button:text-is('Add note')")
    staff.click("button:text-is('Acknowledge')")
    fits(staff, "the tip page")
    staff.screenshot(path=str(SHOTS / "tipline-tip-390.png"), full_page=True)
    staff.goto(live.url + "/admin/dashboard")
    fits(staff, "the dashboard")
    staff.screenshot(path=str(SHOTS / "tipline-dashboard-390.png"), full_page=True)

    # An admin has more on each page (legal hold, assignment, other logins' forms): the tip
    # page again, then every page the staff menu links to, and the audit page if there is one.
    admin = new_page(PHONE)
    sign_in(live, admin, ADMIN_EMAIL)
    admin.goto(f"{live.url}/admin/tips/{tip_id}")
    fits(admin, "the tip page, as an admin")
    links = admin.eval_on_selector_all(".admin-nav a", "links => links.map(a => a.href)")
    assert len(links) >= 3  # queue, dashboard, account at least
    for link in [*links, live.url + "/admin/audit"]:
        response = admin.goto(link)
        assert response is not None
        if link.endswith("/admin/audit") and response.status == 404:
            continue  # no audit page in this build
        assert response.status == 200, link
        fits(admin, link.removeprefix(live.url))

    open_followup(live, student, receipt, passphrase)
    assert "We read it." in student.inner_text("main")
    fits(student, "the follow-up conversation")
