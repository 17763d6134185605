"""App-wide error pages: short HTML in the visitor's language, never a traceback or their input."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from tipline.web.headers import register_security_headers
from tipline.web.report.i18n import pick_lang, strings

log = logging.getLogger(__name__)

CODES = (400, 403, 404, 405, 413, 429, 500, 503)
RETRY_AFTER = "60"  # seconds: what a 503 for a database outage asks a client to wait
_KEPT_HEADERS = ("Allow", "Retry-After")

PAGES: dict[str, dict[int, tuple[str, str]]] = {
    "en": {
        400: (
            "The form could not be sent",
            "Nothing was saved. Go back, reload the page and try again.",
        ),
        403: ("Not allowed", "You do not have access to this page."),
        404: (
            "Page not found",
            "We could not find that page. If you are trying to send a "
            "tip, check the link your school gave you.",
        ),
        405: ("Not allowed", "This page cannot be used that way."),
        413: (
            "The file is too large",
            "Files can be up to 5 MB. Nothing was saved. Go back "
            "and choose a smaller file, or send your tip without it.",
        ),
        429: ("Too many requests", "Please wait a few minutes and try again."),
        500: (
            "Something went wrong",
            "Your request could not be completed. Please try again in a few minutes.",
        ),
        503: (
            "Try again later",
            "This service is not available right now. Please try again in a few minutes.",
        ),
    },
    "es": {
        400: (
            "No se pudo enviar el formulario",
            "No se guardó nada. Vuelve atrás, recarga la página e inténtalo de nuevo.",
        ),
        403: ("No permitido", "No tienes acceso a esta página."),
        404: (
            "Página no encontrada",
            "No encontramos esa página. Si quieres enviar un aviso, "
            "revisa el enlace que te dio tu escuela.",
        ),
        405: ("No permitido", "Esta página no se puede usar de esa forma."),
        413: (
            "El archivo es demasiado grande",
            "Los archivos pueden tener hasta 5 MB. No se "
            "guardó nada. Vuelve atrás y elige un archivo más pequeño, o envía tu aviso sin "
            "él.",
        ),
        429: ("Demasiadas solicitudes", "Espera unos minutos e inténtalo de nuevo."),
        500: (
            "Algo salió mal",
            "No se pudo completar tu solicitud. Inténtalo de nuevo en unos minutos.",
        ),
        503: (
            "Inténtalo más tarde",
            "Este servicio no está disponible en este momento. Inténtalo de nuevo en unos minutos.",
        ),
    },
}


def register_error_pages(app: Flask) -> None:
    """Error pages for CODES and the security headers on every response."""
    for code in CODES:
        app.register_error_handler(code, _error_page)
    app.register_error_handler(DBAPIError, _database_down)
    register_security_headers(app)


def database_unavailable(e: DBAPIError) -> None:
    """Log a database failure in a request: its class and the route, never its message.

    The message quotes the SQL statement (parameters are hidden by the engine options, but
    a route's own log line is all an operator needs to know the database was unreachable).
    """
    kind = type(e.orig).__name__ if e.orig is not None else type(e).__name__
    if isinstance(e, OperationalError | InterfaceError):
        log.warning("%s: database unavailable (%s); nothing was stored", request.endpoint, kind)
    else:  # a bug, not an outage: the traceback names our statement, never a value
        log.error("%s: database error (%s); nothing was stored", request.endpoint, kind, exc_info=e)


def _database_down(e: DBAPIError) -> ResponseReturnValue:
    """A database outage is a 503 with our own page (and Retry-After), never a traceback."""
    database_unavailable(e)
    return _error_page(ServiceUnavailable(retry_after=int(RETRY_AFTER)))


def _error_page(e: HTTPException) -> ResponseReturnValue:
    code = e.code or 500
    # Only our own fixed words: e.description may quote a request, and a traceback or a
    # student's text must never be echoed into a page, a cache or a proxy's log.
    headers = {k: v for k, v in e.get_headers() if k in _KEPT_HEADERS}
    headers["Cache-Control"] = "no-store"
    lang = _lang()
    title, message = PAGES[lang].get(code, PAGES[lang][500])
    if _wants_json():
        return jsonify(error=code, message=title), code, headers
    chrome = strings(lang)  # the same header and 911 line as every page of the tip form
    html = render_template(
        "errors/error.html",
        page_lang=lang,
        title=title,
        message=message,
        site_name=chrome["site_name"],
        skip=chrome["skip"],
        danger=chrome["danger"],
    )
    return html, code, headers


def _lang() -> str:
    try:
        return pick_lang()
    except Exception:  # a malformed query string or header must not turn a 4xx into a 500
        return "en"


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes.accept_html
