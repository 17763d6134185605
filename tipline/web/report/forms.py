"""Students' forms. Error messages are keys into `i18n.TEXT`, shown in the page's language."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional


class TipForm(FlaskForm):  # type: ignore[misc]
    # Good for one post of this rendering (`intake.formtokens`); checked by the view, which
    # tells a replay apart from a missing field.
    form_token = HiddenField()
    text = TextAreaField(validators=[DataRequired(message="err_text_required")])
    attachment = FileField(validators=[Optional()])


class FollowupForm(FlaskForm):  # type: ignore[misc]
    code = StringField(validators=[DataRequired(message="err_code_required")])
    passphrase = StringField(validators=[DataRequired(message="err_pass_required")])
    message = TextAreaField(validators=[Optional()])


class ReplyForm(FlaskForm):  # type: ignore[misc]
    # A signed, short-lived marker of a successful follow-up login: the passphrase is not
    # written back into the page, and nothing is kept in a cookie.
    token = HiddenField(validators=[DataRequired()])
    message = TextAreaField(validators=[DataRequired(message="err_message_required")])


__all__ = ["FollowupForm", "ReplyForm", "TipForm"]
