"""The application factory: settings, extensions, services, blueprints, error pages."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from tipline.extensions import csrf, db, login_manager, migrate
from tipline.platform.services import install_services
from tipline.settings import Settings, load_settings
from tipline.web.ackpage.views import bp as ackpage_bp
from tipline.web.admin.views import bp as admin_bp
from tipline.web.errorpages import register_error_pages
from tipline.web.ops.views import bp as ops_bp
from tipline.web.report.views import bp as report_bp
from tipline.web.sms.fastpath import InboundFastPath
from tipline.web.sms.views import bp as sms_bp
from tipline.web.twiliohooks import SessionInterface
from tipline.web.voice.views import bp as voice_bp

__all__ = ["create_app"]


def create_app(
    settings: Settings | Mapping[str, str] | None = None,
    *,
    async_commit: bool = False,
    **overrides: Any,
) -> Flask:
    """Application factory. `settings` defaults to the process environment.

    `async_commit`: on PostgreSQL, this process's commits return before the server has
    flushed them to disk (the worker: see `_engine_options`); the web process never.
    """
    if settings is None:
        settings = load_settings(os.environ)
    elif not isinstance(settings, Settings):
        settings = load_settings(settings)

    from tipline import models  # noqa: F401, PLC0415 - registers the tables on the metadata

    app = Flask(__name__, instance_path=str(settings.instance_path))
    https = settings.public_url.startswith("https://")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url, async_commit=async_commit),
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        # `__Host-`: the browser keeps it only if Secure, for this host alone, on path / — no
        # sibling subdomain can set or shadow the staff session's cookie.
        SESSION_COOKIE_NAME="__Host-session" if https else "session",
        WTF_CSRF_TIME_LIMIT=None,
        TIPLINE_SETTINGS=settings,
    )
    app.config.update(overrides)
    _configure_logging(settings.log_level)

    app.session_interface = SessionInterface()

    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_dir())
    csrf.init_app(app)
    login_manager.init_app(app)
    install_services(app, settings)
    _register_blueprints(app)

    register_error_pages(app)

    app.wsgi_app = InboundFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
    return app


def _register_blueprints(app: Flask) -> None:

    app.register_blueprint(ops_bp)
    app.register_blueprint(sms_bp)
    app.register_blueprint(report_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(voice_bp)
    app.register_blueprint(ackpage_bp)


def _engine_options(url: str, *, async_commit: bool = False) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # WAL lets the worker read while the web process writes; busy_timeout waits on locks.
        return {"connect_args": {"timeout": 15}, "hide_parameters": True}
    # No pre-ping: it cost a round trip on every checkout. A connection the server dropped
    # fails its first statement instead; SQLAlchemy then invalidates the whole pool, so only
    # that one request gets a 500 (Twilio retries it per the webhook's fallback settings, and
    # the replay key makes a retry safe). pool_size covers `serve --threads` up to 5 without
    # waiting; overflow absorbs the CLI and bursts.
    # hide_parameters: an exception's text never carries a value (sealed blobs, keyed hashes,
    # staff emails), only the statement.
    # connect_timeout: a server that does not answer (host down, packets dropped) fails the
    # connect within 2 s, so the SMS webhook still has time to spool the tip and answer.
    # async_commit (the worker's connections): a commit does not wait for the server's disk
    # flush (about 3.5 ms each on a small server; a routed tip's page waits for two: the
    # routing with its first step, then the send attempt's row). A server crash can undo the
    # last fraction of a second of the worker's commits, never a tip: intake commits durably,
    # and an undone routing, step or send record leaves the tip marked for routing or the
    # message owed, so the sweeper does it again (a page may go out twice; none is lost). A
    # worker crash loses nothing: the server has it.
    connect_args: dict[str, Any] = {"connect_timeout": 2}
    if async_commit:
        connect_args["options"] = "-c synchronous_commit=off"
    return {
        "pool_pre_ping": False,
        "pool_size": 5,
        "max_overflow": 5,
        "hide_parameters": True,
        "pool_timeout": 2,
        "connect_args": connect_args,
    }


def _migrations_dir() -> str:
    return os.path.join(os.path.dirname(__file__), "migrations")


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tipline").setLevel(level)
    logging.getLogger("workers").setLevel(level)
    # Werkzeug's access log prints client IPs and paths; tip routes must never log IPs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # At DEBUG urllib3 logs every request line: a Twilio media URL names the student's message.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
