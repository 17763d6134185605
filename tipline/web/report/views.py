"""Students on the web: the tip form, its receipt, and follow-ups by receipt.

Views only translate HTTP into `webtips` calls. Nothing here reads `request.remote_addr` or
any header that could identify a student; the only cookie is Flask's browser-session cookie
holding the CSRF token and a random id that counts the session's tips (`formtokens`).
"""

from __future__ import annotations

import logging
import math
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    url_for,
)
from flask import session as browser_session
from flask.typing import ResponseReturnValue
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import FileStorage

from tipline.db import utcnow
from tipline.district.config import SchoolConfig, load_district
from tipline.errors import TiplineError, UnknownSchool
from tipline.extensions import dbsession
from tipline.intake import formtokens, outage, web
from tipline.intake.records import conversation, school_by_slug
from tipline.models import School, Tip
from tipline.platform.queueing import enqueue_fetch_media, hand_off_route
from tipline.platform.ratelimit import LimiterUnavailable, Limits, RateLimited
from tipline.platform.services import Services, services
from tipline.web.report.forms import FollowupForm, ReplyForm, TipForm
from tipline.web.report.i18n import pick_lang, strings

log = logging.getLogger(__name__)

bp = Blueprint("report", __name__)

TIP_BODY_LIMIT = web.MAX_ATTACHMENT + 256 * 1024  # the file plus the text and form fields
FORM_BODY_LIMIT = 256 * 1024
TOKEN_MAX_AGE = 30 * 60  # a follow-up page left open on a shared computer stops working
TOKEN_SALT = "tipline.report.followup"  # noqa: S105 - a namespace, not a secret
LIMITS_CONFIG = "TIPLINE_FOLLOWUP_LIMITS"  # app.config override (tests); else Limits()
BUDGET_CONFIG = "TIPLINE_TIP_BUDGET"  # app.config override (tests); else formtokens.Budget()
SESSION_ID = "tips"  # the signed session's random id for counting its tips
FORM_REFUSALS = {  # FormRefused.reason -> status, title and body keys
    "used": (400, "form_used_title", "form_used_body"),
    "invalid": (400, "form_invalid_title", "form_invalid_body"),
    "budget": (429, "budget_title", "budget_body"),
}


@bp.url_value_preprocessor
def _limit_body(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # These run before every before_request hook, CSRFProtect's included, so the limit is in
    # place before anything reads the body: an oversized upload gets the 413 page.
    request.max_content_length = TIP_BODY_LIMIT if endpoint == "report.tip" else FORM_BODY_LIMIT


@bp.after_request
def _no_store(resp: Response) -> Response:
    # Receipts and conversations must not survive in a shared computer's cache or history.
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/tip/<school>", methods=["GET", "POST"])
def tip(school: str) -> ResponseReturnValue:
    """The tip form; on success the receipt, shown this once.

    With the database down the form is still served and a tip still taken: from the
    configuration file, into this machine's spool (`tipline.intake.outage`).
    """
    try:
        return _tip(school)
    except SQLAlchemyError as e:
        _discard_session()
        orig = getattr(e, "orig", None)
        log.warning(
            "report.tip: database unavailable (%s); the form works from the spool",
            type(orig if orig is not None else e).__name__,
        )
        return _tip_without_database(school, e)


def _tip(school: str) -> ResponseReturnValue:
    session = dbsession()
    try:
        found = school_by_slug(session, school)
    except UnknownSchool:
        abort(404)
    lang = pick_lang()
    form = TipForm()
    svc = services()
    fresh = False
    if form.is_submitted():
        g.tip_token_redeemed = True
        redeemed = _redeem(svc, form, found.slug, lang)
        if not isinstance(redeemed, bool):
            return redeemed
        fresh = redeemed
    if form.validate_on_submit():
        try:
            receipt = web.submit_web_tip(
                session,
                svc.vault,
                svc.rules(session),
                school=found,
                text=form.text.data,
                attachment=_read_upload(form.attachment.data),
                lang=lang,
                now=utcnow(),
                fresh_session=fresh,
            )
        except web.EmptyTip:
            session.rollback()
            form.text.errors.append("err_text_required")
        except web.AttachmentRejected as e:
            session.rollback()
            form.attachment.errors.append(f"err_file_{e.reason}")
        else:
            session.commit()
            # After the commit: with Redis down the tip is safe and the sweeper routes it.
            hand_off_route(svc, receipt.tip.id, receipt.tip.code)
            if receipt.attachment_id is not None:  # checked in the sandbox, never here
                enqueue_fetch_media(svc, receipt.attachment_id)
            formtokens.spend(svc, _session_id(), _budget())
            return _page("report/receipt.html", lang, school=found, receipt=receipt)
    return _form_page(found, form, lang)


def _form_page(found: School | SchoolConfig, form: TipForm, lang: str) -> ResponseReturnValue:
    """The tip form. Every rendering gets a token of its own, also after an error: the last
    one is used up."""
    form.form_token.data = formtokens.issue(current_app.secret_key or "", found.slug, _session_id())
    return _page(
        "report/tip.html",
        lang,
        school=found,
        form=form,
        hours=_hours(found, lang),
        switch_url=url_for("report.tip", school=found.slug, lang=strings(lang)["switch_lang"]),
        action=url_for("report.tip", school=found.slug, lang=lang),
    )


def _budget() -> formtokens.Budget:
    budget: formtokens.Budget = current_app.config.get(BUDGET_CONFIG) or formtokens.Budget()
    return budget


def _redeem(svc: Services, form: TipForm, slug: str, lang: str) -> bool | ResponseReturnValue:
    """Spend the form's single-use token within the session's budget: whether the session is
    new (flood mode counts those), or the page that says why the post is refused."""
    try:
        return formtokens.redeem(
            svc,
            current_app.secret_key or "",
            form.form_token.data or "",
            school=slug,
            session_id=_session_id(),
            budget=_budget(),
        )
    except formtokens.FormRefused as e:
        status, title, body = FORM_REFUSALS[e.reason]
        link = url_for("report.tip", school=slug, lang=lang)
        return _notice(lang, title, strings(lang)[body], status, link=link)


def _tip_without_database(slug: str, down: SQLAlchemyError) -> ResponseReturnValue:
    """`_tip` from the configuration file and the spool; the receipt is shown as usual."""
    svc = services()
    try:
        found = load_district(svc.settings.config_path).school(slug)
    except TiplineError:
        found = None
    if found is None:
        raise down  # a school the file does not name: the usual "try again later" page
    lang = pick_lang()
    form = TipForm()
    if form.is_submitted() and not g.get("tip_token_redeemed"):
        redeemed = _redeem(svc, form, found.slug, lang)
        if not isinstance(redeemed, bool):
            return redeemed
    if form.validate_on_submit():
        try:
            receipt = outage.receive_web_offline(
                svc,
                school=found.slug,
                text=form.text.data,
                attachment=_read_upload(form.attachment.data),
                lang=lang,
                now=utcnow(),
            )
        except web.EmptyTip:
            form.text.errors.append("err_text_required")
        except web.AttachmentRejected as e:
            form.attachment.errors.append(f"err_file_{e.reason}")
        except OSError as e:
            log.error("report.tip: the spool could not take the tip (%s)", type(e).__name__)
            raise down from None
        else:
            formtokens.spend(svc, _session_id(), _budget())
            return _page("report/receipt.html", lang, school=found, receipt=receipt)
    return _form_page(found, form, lang)


def _discard_session() -> None:
    try:
        dbsession().rollback()
    except SQLAlchemyError:
        log.debug("the session's connection was already gone")


def _session_id() -> str:
    """This browser session's random id for its tips, made on first use."""
    value = browser_session.get(SESSION_ID)
    if not isinstance(value, str):
        value = browser_session[SESSION_ID] = formtokens.new_session_id()
    return value


@bp.route("/followup", methods=["GET", "POST"])
def followup() -> ResponseReturnValue:
    """Receipt code and passphrase: the conversation, and a form to add to it."""
    lang = pick_lang()
    if request.method == "POST" and "token" in request.form:
        return _reply(lang)
    form = FollowupForm()
    if not form.validate_on_submit():
        return _login_page(lang, form)
    session = dbsession()
    svc = services()
    limits = current_app.config.get(LIMITS_CONFIG) or Limits()
    t = strings(lang)
    try:
        found = web.open_followup_limited(
            session, svc, form.code.data[:64], form.passphrase.data, limits
        )
    except RateLimited as e:
        minutes = max(1, math.ceil(e.retry_after / 60))
        body = t["limited_body"].format(minutes=minutes)
        return _notice(lang, "limited_title", body, 429, retry_after=e.retry_after)
    except LimiterUnavailable:
        # Fail safe: without the counters, guessing would be unlimited, so refuse for now.
        session.rollback()
        return _notice(lang, "unavailable_title", t["unavailable_body"], 503, retry_after=60)
    if found is None:
        form.form_errors.append("err_login")
        form.passphrase.data = ""  # never written back into a page, right or wrong
        return _login_page(lang, form)
    sent = False
    message = form.message.data or ""
    if message.strip():
        sent = _add(found, message)
    return _conversation(lang, found, ReplyForm(formdata=None), sent=sent)


def _reply(lang: str) -> ResponseReturnValue:
    form = ReplyForm()
    found = _tip_from_token(form.token.data or "")
    if found is None:
        return _login_page(lang, FollowupForm(formdata=None), notice="expired")
    sent = False
    if form.validate_on_submit():
        sent = _add(found, form.message.data)
        if not sent:
            form.message.errors.append("err_message_required")
    return _conversation(lang, found, ReplyForm(formdata=None) if sent else form, sent=sent)


def _add(tip: Tip, text: str) -> bool:
    """Store a follow-up; True when stored. Routing is enqueued after the commit."""
    session = dbsession()
    svc = services()
    try:
        result = web.add_followup(
            session, svc.vault, svc.rules(session), tip, text=text, now=utcnow()
        )
    except web.EmptyTip:
        session.rollback()
        return False
    session.commit()
    if result.escalated:
        hand_off_route(svc, tip.id, tip.code)
    return True


def _conversation(lang: str, tip: Tip, form: ReplyForm, *, sent: bool) -> ResponseReturnValue:
    form.token.data = _serializer().dumps(tip.id)
    t = strings(lang)
    zone = _zone(tip.school)
    entries = [
        {
            "mine": entry.direction == "in",
            "who": t["from_you"] if entry.direction == "in" else t["from_staff"],
            "at": entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "iso": entry.at.isoformat(),
            "text": entry.text,
        }
        for entry in conversation(dbsession(), services().vault, tip)
    ]
    return _page(
        "report/conversation.html",
        lang,
        tip=tip,
        entries=entries,
        replied=any(not e["mine"] for e in entries),
        form=form,
        sent=sent,
        action=url_for("report.followup", lang=lang),
    )


def _login_page(lang: str, form: FollowupForm, notice: str | None = None) -> ResponseReturnValue:
    return _page(
        "report/followup.html",
        lang,
        form=form,
        notice=notice,
        switch_url=url_for("report.followup", lang=strings(lang)["switch_lang"]),
        action=url_for("report.followup", lang=lang),
    )


def _notice(
    lang: str,
    title_key: str,
    body: str,
    status: int,
    *,
    retry_after: int | None = None,
    link: str | None = None,
) -> ResponseReturnValue:
    html = render_template(
        "report/notice.html",
        t=strings(lang),
        page_lang=lang,
        title_key=title_key,
        body=body,
        link=link,
    )
    return html, status, {} if retry_after is None else {"Retry-After": str(retry_after)}


def _page(template: str, lang: str, **context: Any) -> ResponseReturnValue:
    return render_template(template, t=strings(lang), page_lang=lang, lang=lang, **context)


def _tip_from_token(token: str) -> Tip | None:
    try:
        tip_id = _serializer().loads(token, max_age=TOKEN_MAX_AGE)
    except BadData:
        return None
    if not isinstance(tip_id, str):
        return None
    return web.tip_for_followup(dbsession(), tip_id)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=TOKEN_SALT)


def _read_upload(upload: Any) -> bytes | None:
    """The uploaded bytes (one byte past the limit at most, to detect it), or None."""
    if not isinstance(upload, FileStorage) or not upload.filename:
        return None
    return upload.stream.read(web.MAX_ATTACHMENT + 1)


def _hours(school: School | SchoolConfig, lang: str) -> str | None:
    if not school.monitored:
        return None
    return strings(lang)["monitored"].format(hours=school.monitored, timezone=school.timezone)


def _zone(school: School) -> ZoneInfo:
    try:
        return ZoneInfo(school.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")
