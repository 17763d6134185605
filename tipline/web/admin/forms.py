"""The admin view's forms: every POST carries a CSRF token (Flask-WTF)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from tipline.staff.breakglass import MAX_REASON, MIN_REASON
from tipline.staff.casework import DISPOSITIONS, MAX_NOTE, MAX_REPLY
from tipline.triage import CATEGORIES, SEVERITIES


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Sign in")


class TotpForm(FlaskForm):  # type: ignore[misc]
    code = StringField("Code", validators=[DataRequired(), Length(min=6, max=32)])
    submit = SubmitField("Verify")


class ResetSecondFactorForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("Email of the login", validators=[DataRequired(), Length(max=254)])
    submit = SubmitField("Reset its second factor")


class PostForm(FlaskForm):  # type: ignore[misc]
    """A button and its CSRF token: logout, acknowledge."""

    submit = SubmitField("Go")


class LegalHoldForm(FlaskForm):  # type: ignore[misc]
    """Put a tip under legal hold ("1") or lift it ("0")."""

    hold = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Change legal hold")


class ReplyForm(FlaskForm):  # type: ignore[misc]
    reply = TextAreaField(
        "Reply to the student", validators=[DataRequired(), Length(max=MAX_REPLY)]
    )
    submit = SubmitField("Send reply")


class NoteForm(FlaskForm):  # type: ignore[misc]
    note = TextAreaField("Internal note", validators=[DataRequired(), Length(max=MAX_NOTE)])
    submit = SubmitField("Add note")


class StatusForm(FlaskForm):  # type: ignore[misc]
    status = SelectField("Status", choices=["open", "closed"])
    disposition = SelectField(
        "Disposition (when closing)",
        choices=[SelectChoice("", "—"), *DISPOSITIONS],
        validators=[Optional()],
    )
    submit = SubmitField("Change status")


class AssignForm(FlaskForm):  # type: ignore[misc]
    user_id = SelectField("Assign to", coerce=int, choices=[])

    def offer(self, users: list[Any]) -> None:
        """The logins this tip may be assigned to, labelled by email."""
        self.user_id.choices = [SelectChoice(str(u.id), u.email) for u in users]

    submit = SubmitField("Assign")


class ReclassifyForm(FlaskForm):  # type: ignore[misc]
    severity = SelectField("Severity", choices=list(SEVERITIES))
    category = SelectField("Category", choices=list(CATEGORIES))
    submit = SubmitField("Reclassify")


class RevealForm(FlaskForm):  # type: ignore[misc]
    """Break-glass: the written reason for revealing a student's number."""

    reason = TextAreaField(
        "Why the number is needed now",
        validators=[DataRequired(), Length(min=MIN_REASON, max=MAX_REASON)],
    )
    submit = SubmitField("Ask to reveal the number")


class IncidentTipForm(FlaskForm):  # type: ignore[misc]
    """Move a tip of the incident's school into the incident, by its code."""

    code = StringField("Tip code", validators=[DataRequired(), Length(max=16)])
    submit = SubmitField("Move into this incident")


class OverrideForm(FlaskForm):  # type: ignore[misc]
    """Someone covers a duty at a school for a while (times in the school's time zone)."""

    school = HiddenField(validators=[DataRequired(), Length(max=63)])
    duty = StringField("Duty", validators=[DataRequired(), Length(max=16)])
    staff = StringField("Staff", validators=[DataRequired(), Length(max=64)])
    start = StringField("From", validators=[DataRequired(), Length(max=32)])
    end = StringField("Until", validators=[DataRequired(), Length(max=32)])
    submit = SubmitField("Set cover")


class NewLoginForm(FlaskForm):  # type: ignore[misc]
    """A new staff login; its schools come as repeated `schools` fields (checkboxes)."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = StringField("Role", validators=[DataRequired(), Length(max=16)])
    staff = StringField("Staff entry", validators=[Optional(), Length(max=64)])
    submit = SubmitField("Create login")
