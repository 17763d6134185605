"""Tips written to run code in a staff member's browser show as text and run nothing: no
dialog opens, nothing reaches the console (a script the CSP blocked would log there), no
element is made from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.admin import AuthActions
from tests.support.browser import RUIZ_EMAIL, Listener, Live, open_followup, send_tip, sign_in
from tipline.extensions import db
from tipline.models import Tip

pytestmark = pytest.mark.browser

HOSTILE = [
    "<script>alert('script')</script> he said he would bring a knife",
    "<img src=x onerror=\"alert('img')\"> kids are vaping in the bathroom",
    "<svg onload=\"alert('svg')\"></svg> someone keeps pushing my friend",
    "\"><script>console.log('attr')</script><b onmouseover=alert(4)>bold</b>",
]


def test_hostile_tips_show_as_text_and_run_nothing(
    live: Live, new_page: Callable[..., Any]
) -> None:
    AuthActions(live.app, live.app.test_client()).create(
        RUIZ_EMAIL, "sro", ["lincoln"], staff="ruiz"
    )
    watch = Listener()
    student = watch.watch(new_page())
    receipts = [send_tip(live, student, text) for text in HOSTILE]
    open_followup(live, student, *receipts[0])
    assert HOSTILE[0] in student.inner_text("main")  # the student's own words, as text

    staff = watch.watch(new_page())
    sign_in(live, staff)
    staff.goto(live.url + "/admin/?status=all")
    queue = staff.inner_text("#live-queue")
    assert "<script>" in queue  # the critical one's excerpt, as typed
    with live.app.app_context():
        tip_ids = list(db.session.scalars(select(Tip.id)))
        db.session.remove()
    assert len(tip_ids) == len(HOSTILE)
    for tip_id in tip_ids:
        staff.goto(f"{live.url}/admin/tips/{tip_id}")
        shown = staff.inner_text(".conversation")
        assert any(text in shown for text in HOSTILE)
        # Nothing in the page was made from the tip: no script, image, SVG or handler.
        assert staff.locator("main script, main img, main svg, main b").count() == 0
        assert staff.locator("[onerror], [onload], [onmouseover]").count() == 0
        staff.mouse.move(200, 300)
    staff.wait_for_timeout(300)  # a late onload or onerror would have fired by now
    assert watch.quiet(), (watch.dialogs, watch.console, watch.errors)
