"""The keyring service: data keys for records, keyed hashes for lookups, key rotation.

Lives on `app.extensions["tipline.vault"]`; workers and tests build one from Settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.db import new_id
from tipline.models.keys import DataKey, NamedSecret
from tipline.vault import crypto

LOOKUP_SECRET = "lookup"  # noqa: S105 - the name of a row, not a secret
CACHED_KEYS = 4096  # unwrapped data keys kept per process
PURPOSES = ("phone", "sid", "ratelimit", "receipt", "incident", "passphrase")


class WrappedKey(NamedTuple):
    """A new data key: its row's values (id, master key id, wrapped) and the plain key."""

    id: str
    master_key_id: str
    wrapped: bytes
    key: bytes

    def seal(self, table: str, column: str, row_id: str, value: bytes) -> bytes:
        return crypto.seal(self.key, value, crypto.place(table, column, row_id))


class NotInitialized(Exception):
    """The lookup key is missing: `tipline init` has not been run on this database."""


class SealedRecord(Protocol):
    """A row with its own data key, like Tip, Message or Attachment."""

    __tablename__: str
    id: str
    data_key: DataKey | None


class Vault:
    """Encrypts record fields under per-record data keys and computes keyed lookup hashes."""

    def __init__(self, master_keys: Sequence[tuple[str, bytes]]) -> None:
        self.keyring = crypto.MasterKeyring(master_keys)
        self._subkeys: dict[str, bytes] = {}
        self._unwrapped: dict[tuple[str, str, bytes], bytes] = {}

    # -- data keys ---------------------------------------------------------------------------
    def new_data_key(self) -> DataKey:
        """A fresh data key row (caller adds it to the session with its record)."""
        fresh = self.new_wrapped_key()
        dk = DataKey(id=fresh.id, master_key_id=fresh.master_key_id, wrapped=fresh.wrapped)
        self._remember(dk, fresh.key)
        return dk

    def new_wrapped_key(self) -> WrappedKey:
        """A fresh data key as plain values, for a statement that inserts its row itself.

        Not cached: the caller seals with it at once and never needs it again.
        """
        key_id, key = new_id(), crypto.new_key()
        master_key_id, wrapped = self.keyring.wrap(key, key_id)
        return WrappedKey(key_id, master_key_id, wrapped, key)

    def _key(self, dk: DataKey) -> bytes:
        key = self._unwrapped.get((dk.id, dk.master_key_id, dk.wrapped))
        if key is None:
            key = self.keyring.unwrap(dk.master_key_id, dk.wrapped, dk.id)
            self._remember(dk, key)
        return key

    def _remember(self, dk: DataKey, key: bytes) -> None:
        """Cache an unwrapped key, a bounded number of them: a process taking tips only ever
        adds keys, and plain keys of shredded records must not pile up in its memory."""
        if len(self._unwrapped) >= CACHED_KEYS:
            self._unwrapped.clear()
        self._unwrapped[(dk.id, dk.master_key_id, dk.wrapped)] = key

    def seal(self, record: SealedRecord, column: str, value: bytes) -> bytes:
        if record.data_key is None:
            raise crypto.CryptoError(f"{record.__tablename__} {record.id} has no data key")
        aad = crypto.place(record.__tablename__, column, record.id)
        return crypto.seal(self._key(record.data_key), value, aad)

    def open(self, record: SealedRecord, column: str, blob: bytes) -> bytes:
        """Decrypt a field; raises CryptoError when shredded, moved or tampered with."""
        if record.data_key is None:
            raise crypto.CryptoError(f"{record.__tablename__} {record.id} was shredded")
        aad = crypto.place(record.__tablename__, column, record.id)
        return crypto.open_sealed(self._key(record.data_key), blob, aad)

    def seal_for(self, table: str, column: str, row_id: str, dk: DataKey, value: bytes) -> bytes:
        """Seal for a row that is not a SealedRecord (e.g. integer ids)."""
        return crypto.seal(self._key(dk), value, crypto.place(table, column, row_id))

    def open_for(self, table: str, column: str, row_id: str, dk: DataKey, blob: bytes) -> bytes:
        return crypto.open_sealed(self._key(dk), blob, crypto.place(table, column, row_id))

    def put(self, record: SealedRecord, column: str, value: str | bytes) -> None:
        """Seal `value` into the record's private `_<column>` attribute."""
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        setattr(record, f"_{column}", self.seal(record, column, raw))

    def get_bytes(self, record: SealedRecord, column: str) -> bytes | None:
        blob = getattr(record, f"_{column}")
        return None if blob is None else self.open(record, column, blob)

    def get_text(self, record: SealedRecord, column: str) -> str | None:
        raw = self.get_bytes(record, column)
        return None if raw is None else raw.decode("utf-8", "replace")

    # -- lookups -----------------------------------------------------------------------------
    def ensure_lookup_key(self, session: Session) -> bool:
        """Create the lookup key once; returns True when it was created now."""
        if session.get(NamedSecret, LOOKUP_SECRET) is not None:
            return False
        master_id, wrapped = self.keyring.wrap(crypto.new_key(), f"secret:{LOOKUP_SECRET}")
        session.add(NamedSecret(name=LOOKUP_SECRET, master_key_id=master_id, wrapped=wrapped))
        return True

    def lookup_hash(self, session: Session, purpose: str, value: str) -> str:
        """Keyed hash of a phone, MessageSid or limiter key; stable across master-key rotation."""
        subkey = self._subkeys.get(purpose)
        if subkey is None:
            if purpose not in PURPOSES:
                raise ValueError(f"unknown lookup purpose {purpose!r}")
            secret = session.get(NamedSecret, LOOKUP_SECRET)
            if secret is None:
                raise NotInitialized("the lookup key is missing: run `tipline init`")
            root = self.keyring.unwrap(
                secret.master_key_id, secret.wrapped, f"secret:{secret.name}"
            )
            subkey = self._subkeys[purpose] = crypto.subkey(root, purpose)
        return crypto.keyed_hash(subkey, value)

    # -- rotation ----------------------------------------------------------------------------
    def rotate(self, session: Session, batch: int = 1000) -> int:
        """Re-wrap every data key and named secret not under the current master key."""
        current = self.keyring.current_id
        count = 0
        for secret in session.scalars(
            select(NamedSecret).where(NamedSecret.master_key_id != current)
        ):
            ref = f"secret:{secret.name}"
            root = self.keyring.unwrap(secret.master_key_id, secret.wrapped, ref)
            secret.master_key_id, secret.wrapped = self.keyring.wrap(root, ref)
            count += 1
        after = ""  # keyset pages along the primary key: each row is read once, however many
        while True:
            keys = session.scalars(
                select(DataKey)
                .where(DataKey.id > after, DataKey.master_key_id != current)
                .order_by(DataKey.id)
                .limit(batch)
            ).all()
            if not keys:
                break
            for dk in keys:
                plain = self.keyring.unwrap(dk.master_key_id, dk.wrapped, dk.id)
                dk.master_key_id, dk.wrapped = self.keyring.wrap(plain, dk.id)
            count += len(keys)
            after = keys[-1].id
            session.flush()
        return count
