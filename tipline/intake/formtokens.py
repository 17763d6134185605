"""The web tip form's single-use tokens and each browser session's budget of tips.

Flask-WTF's CSRF token lasts the whole browser session, so one form, fetched once, could be
posted again and again. Each rendered form therefore carries a token of its own: signed (so
only this server makes them), naming the school and the browser session it was made for, and
good for one post: redeeming it marks it used in Redis until it would have expired anyway. A
session's tips are counted too, so one session cannot post without end.

Nothing here names a student: the session id is a random value in Flask's signed session
cookie, the Redis keys are hashes of it and of the token, and no tip records either. Without
Redis a tip is still accepted (a web process takes tips with Redis down, see `/livez`): a
token is then checked for its signature and age only, and the budget is not counted.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer
from redis.exceptions import RedisError

from tipline.platform.services import Services

log = logging.getLogger(__name__)

SALT = "tipline.report.tipform"
PREFIX = "tipline:tipform:"
MAX_AGE = 2 * 60 * 60  # a form left open this long is fetched again (the page says so)


@dataclass(frozen=True)
class Budget:
    tips: int = 10  # tips one browser session may send in `window_s`: more than any student
    window_s: int = 60 * 60


class FormRefused(Exception):
    """The post is refused and nothing is stored: `reason` is "used" (a replay), "invalid"
    (forged, expired, or made for another school or session) or "budget"."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"tip form refused: {reason}")
        self.reason = reason


def new_session_id() -> str:
    """A random id for one browser session's tips (kept in its signed session cookie)."""
    return secrets.token_urlsafe(16)


def issue(secret: str | bytes, school: str, session_id: str) -> str:
    """A fresh token for one rendering of `school`'s tip form in this browser session."""
    return _serializer(secret).dumps([school, session_id, secrets.token_urlsafe(16)])


def redeem(
    svc: Services, secret: str | bytes, token: str, *, school: str, session_id: str, budget: Budget
) -> bool:
    """Use `token` up for a post to `school`; raise FormRefused when it may not be used.

    True when this browser session has sent no tip yet in its budget's window (or Redis
    cannot tell): flood mode counts tips from new sessions (`tipline.alerting.flood`).

    Marks the token used before the tip is stored: a post that fails afterwards needs the
    form again (its page says so), but two copies of one post can never both be stored.
    """
    try:
        made_for = _serializer(secret).loads(token, max_age=MAX_AGE)
    except BadData:
        raise FormRefused("invalid") from None
    if not isinstance(made_for, list) or made_for[:2] != [school, session_id]:
        raise FormRefused("invalid")
    if svc.redis_resting():
        return True
    try:
        pipe = svc.redis.pipeline(transaction=False)
        pipe.set(_key("used", token), 1, nx=True, ex=MAX_AGE)
        pipe.get(_key("spent", session_id))
        first_use, spent = pipe.execute()
    except (RedisError, OSError) as e:
        svc.redis_failed()
        log.warning("tip form token not checked for reuse, Redis is down: %s", type(e).__name__)
        return True
    if not first_use:
        raise FormRefused("used")
    if int(spent or 0) >= budget.tips:
        raise FormRefused("budget")
    return not int(spent or 0)


def spend(svc: Services, session_id: str, budget: Budget) -> None:
    """Count one stored tip against this browser session's budget (its window starts now)."""
    if svc.redis_resting():
        return
    key = _key("spent", session_id)
    try:
        pipe = svc.redis.pipeline(transaction=True)
        pipe.set(key, 0, nx=True, ex=budget.window_s)
        pipe.incr(key)
        pipe.execute()
    except (RedisError, OSError) as e:
        svc.redis_failed()
        log.warning("tip not counted against its session's budget: %s", type(e).__name__)


def _key(kind: str, value: str) -> str:
    return PREFIX + kind + ":" + hashlib.sha256(value.encode()).hexdigest()


def _serializer(secret: str | bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)
