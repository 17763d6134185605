"""Declarative base with a naming convention, so Alembic migrations are deterministic."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns an aware UTC datetime, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the column type guarantees it
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> str:
    """Random row id, known before insert so associated data can name the row."""
    return secrets.token_hex(16)  # 128 random bits, as uuid4().hex was (without the UUID object)


def utcnow() -> datetime:
    return datetime.now(UTC)


def own_connection(engine: Engine) -> psycopg.Connection[Any]:
    """A PostgreSQL connection of the caller's own, in autocommit: connected as `engine`
    connects (same arguments), never handed back to its pool. The caller closes it."""
    pooled = engine.raw_connection()
    conn = cast(psycopg.Connection[Any], pooled.driver_connection)
    pooled.detach()
    conn.autocommit = True
    return conn
