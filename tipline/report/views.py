"""Students on the web."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("report", __name__)
