"""The first text from a phone never seen before, stored in one PostgreSQL statement.

This is the webhook's hottest path (every new conversation starts here, and it is the one
that pages the SRO), so on PostgreSQL it is a single autocommitted statement: the tipster,
its data keys, the tip under a free code, its `tip.created` event, the MessageSid's hash and
the sealed MessageSid the worker has Twilio delete (`tipline.outbox.forget`), chained by
data-modifying CTEs. One round trip instead of a transaction of eight.
PostgreSQL checks the foreign keys at the end of the statement, so the order inside does not
matter, and a statement is atomic on its own.

The statement also tells the workers the tip needs routing, with a NOTIFY on
`tipline.platform.queueing.ROUTE_CHANNEL` that PostgreSQL delivers at commit: no hand-off after it.

The tipster insert is the guard: when the phone is already known (`ON CONFLICT DO NOTHING`),
nothing at all is written and the caller takes the general path (follow-up, blocked sender,
new tip from a known phone). A replayed MessageSid fails the `inbound_sid` key and also
falls back, to the path that looks the replay up. Rows are the same as the general path
writes (`tipline.intake.records.Rows`); tests compare them.
"""

from __future__ import annotations

import itertools
import json
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from tipline.db import new_id, own_connection
from tipline.intake import records
from tipline.outbox import forget
from tipline.platform import queueing
from tipline.triage import Verdict
from tipline.vault.keyring import Vault

FAST_CODES = 5

_SQL = """
WITH ts AS (
    INSERT INTO tipster (id, kind, phone_hash, data_key_id, phone, language, blocked, created_at)
    VALUES (%(tipster_id)s, 'sms', %(phone_hash)s, %(tipster_dk)s, %(phone)s, %(lang)s, false,
            %(now)s)
    ON CONFLICT (phone_hash) DO NOTHING
    RETURNING id
), free AS (
    -- A scalar subquery with LIMIT is never flattened into a join: each candidate is one
    -- probe of the (school_id, code) unique index, however many tips the school has.
    SELECT c.code FROM ts, unnest(string_to_array(%(codes)s, ',')) WITH ORDINALITY AS c(code, n)
    WHERE (
        SELECT 1 FROM tip WHERE tip.school_id = %(school_id)s AND tip.code = c.code LIMIT 1
    ) IS NULL
    ORDER BY c.n LIMIT 1
), dk AS (
    -- The tip's key only goes in with the tip: no orphan key if every code drawn was taken.
    INSERT INTO data_key (id, master_key_id, wrapped, created_at)
    SELECT %(tipster_dk)s, %(tipster_mk)s, %(tipster_wrapped)s, %(now)s FROM ts
    UNION ALL
    SELECT %(tip_dk)s, %(tip_mk)s, %(tip_wrapped)s, %(now)s FROM free
    UNION ALL
    SELECT %(forget_dk)s, %(forget_mk)s, %(forget_wrapped)s, %(now)s FROM free
), t AS (
    INSERT INTO tip (id, school_id, code, source, severity, category, language, status,
                     tipster_id, data_key_id, body, triage, created_at, last_activity_at,
                     needs_routing, message_count)
    SELECT %(tip_id)s, %(school_id)s, free.code, 'sms', %(severity)s, %(category)s, %(lang)s,
           'new', ts.id, %(tip_dk)s, %(body)s, %(triage)s, %(now)s, %(now)s, true, 1
    FROM ts, free
    RETURNING id, code
), ev AS (
    INSERT INTO audit_event (at, actor, action, tip_id, detail)
    SELECT %(now)s, 'student', 'tip.created', t.id,
           json_build_object('code', t.code, 'source', 'sms', 'severity', %(severity)s::text,
                             'category', %(category)s::text)
    FROM t
), sid AS (
    INSERT INTO inbound_sid (sid_hash, tip_id, reply_kind, created_at)
    SELECT %(sid_hash)s, t.id, %(reply_kind)s, %(now)s FROM t
), fg AS (
    INSERT INTO twilio_forget (id, outbound_id, tip_id, data_key_id, sid, created_at,
                               not_before, attempts)
    SELECT %(forget_id)s, NULL, NULL, %(forget_dk)s, %(forget_sid)s, %(now)s,
           %(forget_at)s, 0 FROM t
)
SELECT id, code, pg_notify(%(channel)s, id) FROM t
"""


@dataclass(frozen=True)
class FirstText:
    """A first text to store: everything already hashed, classified and checked."""

    school_id: int
    phone: str
    phone_hash: str
    sid: str
    sid_hash: str
    text: str
    verdict: Verdict
    reply_kind: str
    now: datetime


def supported(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


def store(bind: Engine | Connection, vault: Vault, first: FirstText) -> records.TipRow | None:
    """Store the tip and its new tipster in one statement; None when the general path must.

    None means nothing was written: the phone is known, or the MessageSid was seen before,
    or the codes drawn were all taken (the general path draws again).
    """
    params = _params(vault, first)
    engine = bind.engine
    cursor = _cursor(engine)
    try:
        cursor.execute(_SQL, params, prepare=True)
        row = cursor.fetchone()
    except psycopg.errors.IntegrityError:
        return None  # a replayed MessageSid, or two first texts racing: the general path sorts it
    except psycopg.Error as e:
        gone = engine.dialect.is_disconnect(cast(Any, e), cast(Any, cursor.connection), None)
        _forget(engine)
        if gone:
            # The server went away (restart, failover): the pooled connections are as dead
            # as this one. A fresh pool, as SQLAlchemy gives its own statements.
            engine.dispose(close=False)
        # As SQLAlchemy itself raises it (an OperationalError when the server is away), so the
        # views' handlers answer it; hide_parameters keeps values out of its text.
        raise DBAPIError.instance(
            _SQL, None, e, psycopg.Error, hide_parameters=True, dialect=engine.dialect
        ) from None
    if row is None:
        return None
    return records.TipRow(row[0], row[1], first.verdict.language, notified=True)


class _Cursors(threading.local):
    """Per thread: the engine's pool it was taken from -> a cursor on a connection of its own.

    The statement runs on a psycopg connection of its own, always in autocommit: no BEGIN
    or COMMIT round trip, no pool checkout, reset or checkin, none of a SQLAlchemy
    Connection's per-call work (together most of what the webhook spent in Python). The one
    cursor is kept too, with the parameter dumpers and row loaders it has looked up; psycopg
    prepares the statement after a few uses. Keyed weakly by pool: when the engine is
    disposed, its connections go with the old pool.
    """

    def __init__(self) -> None:
        self.by_pool: weakref.WeakKeyDictionary[object, psycopg.Cursor[Any]] = (
            weakref.WeakKeyDictionary()
        )


_cursors = _Cursors()


def _cursor(engine: Engine) -> psycopg.Cursor[Any]:
    cursor = _cursors.by_pool.get(engine.pool)
    if cursor is None or cursor.connection.closed:
        cursor = _cursors.by_pool[engine.pool] = own_connection(engine).cursor()
    return cursor


def _forget(engine: Engine) -> None:
    """Close and drop this thread's connection after an error: the next text opens another."""
    cursor = _cursors.by_pool.pop(engine.pool, None)
    if cursor is not None:
        cursor.connection.close()


def _params(vault: Vault, first: FirstText) -> dict[str, object]:
    tipster_id, tip_id = new_id(), new_id()
    tipster_dk, tip_dk = vault.new_wrapped_key(), vault.new_wrapped_key()
    forget_id, forget_dk = new_id(), vault.new_wrapped_key()
    triage = json.dumps(records.verdict_details(first.verdict), ensure_ascii=False)

    def text(value: str) -> bytes:
        return value.encode("utf-8", "surrogatepass")

    return {
        "tipster_id": tipster_id,
        "phone_hash": first.phone_hash,
        "phone": tipster_dk.seal("tipster", "phone", tipster_id, text(first.phone)),
        "lang": first.verdict.language,
        "now": first.now,
        "tipster_dk": tipster_dk.id,
        "tipster_mk": tipster_dk.master_key_id,
        "tipster_wrapped": tipster_dk.wrapped,
        "tip_dk": tip_dk.id,
        "tip_mk": tip_dk.master_key_id,
        "tip_wrapped": tip_dk.wrapped,
        # One text, cheaper to send than an array; the first few codes drawn are plenty (the
        # general path draws all again in the rare case they are all taken).
        "codes": ",".join(itertools.islice(records.candidate_codes(), FAST_CODES)),
        "school_id": first.school_id,
        "tip_id": tip_id,
        "severity": first.verdict.severity,
        "category": first.verdict.category,
        "body": tip_dk.seal("tip", "body", tip_id, text(records.clean_text(first.text))),
        "triage": tip_dk.seal("tip", "triage", tip_id, text(triage)),
        "sid_hash": first.sid_hash,
        "forget_id": forget_id,
        "forget_dk": forget_dk.id,
        "forget_mk": forget_dk.master_key_id,
        "forget_wrapped": forget_dk.wrapped,
        "forget_sid": forget_dk.seal("twilio_forget", "sid", forget_id, text(first.sid)),
        "forget_at": first.now + forget.INBOUND_FIRST_TRY,
        "reply_kind": first.reply_kind,
        "channel": queueing.ROUTE_CHANNEL,
    }
