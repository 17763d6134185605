"""The spool: texts taken while the database is down, kept on this host's disk until it is back.

One file per text, named by a keyed hash of its MessageSid (a text posted twice is one file).
Each is a JSON record encrypted with AES-GCM under an HKDF subkey of the current master key
(the file names the key's id, so a key rotation between the outage and the drain still
opens it), bound to its own spool id: a file
copied or renamed to another id does not open. A file is written whole or not at all: a
temporary file, fsync'd, renamed into place, and the directory fsync'd, so a power cut leaves
either nothing or the whole record, never half a tip.

Each host drains its own folder, one process at a time under an `flock` on `.lock` in it.
Nothing here knows what a record means (`tipline.intake.outage` does).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tipline.db import new_id
from tipline.vault.crypto import CryptoError, MasterKeyring

MAGIC = b"tipline-spool-1\n"
SUFFIX = ".tip"
PURPOSE = "spool"
ID_PURPOSE = "spool-id"
LOCK_NAME = ".lock"


class SpoolError(Exception):
    """A spool file that cannot be read (damaged, or its master key is gone)."""


@dataclass(frozen=True)
class Entry:
    """One spooled file: its id and where it is."""

    id: str
    path: Path


class Spool:
    """A folder of encrypted records, written durably, read back in arrival order."""

    def __init__(self, directory: Path, keyring: MasterKeyring) -> None:
        self.directory = directory
        self.keyring = keyring

    def put(self, record: dict[str, Any], key: str) -> Entry:
        """Store a new record durably under `key` (a MessageSid); returns its entry.

        The file is named by a keyed hash of the key: the same text posted twice is one
        file (`find` sees it), and a name says nothing about the text.
        """
        spool_id = self.keyring.derived_hash(ID_PURPOSE, key)[:32]
        entry = Entry(spool_id, self.directory / f"{spool_id}{SUFFIX}")
        self.replace(entry, {**record, "spool_id": spool_id})
        return entry

    def find(self, key: str) -> tuple[Entry, dict[str, Any]] | None:
        """The record stored under `key`, if it is still waiting."""
        spool_id = self.keyring.derived_hash(ID_PURPOSE, key)[:32]
        entry = Entry(spool_id, self.directory / f"{spool_id}{SUFFIX}")
        try:
            return entry, self.read(entry)
        except FileNotFoundError:
            return None

    def replace(self, entry: Entry, record: dict[str, Any]) -> None:
        """Write `record` as `entry`'s file, atomically and durably."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        plain = json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogatepass")
        key_id, blob = self.keyring.seal_derived(PURPOSE, plain, _aad(entry.id))
        tmp = self.directory / f".tmp-{entry.id}-{new_id()[:8]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + key_id.encode() + b"\n" + blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, entry.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._sync_directory()

    def entries(self) -> list[Entry]:
        """Every record now spooled (in no particular order: `read` says when each came)."""
        try:
            names = [e.name for e in os.scandir(self.directory) if e.name.endswith(SUFFIX)]
        except FileNotFoundError:
            return []
        return [Entry(name[: -len(SUFFIX)], self.directory / name) for name in sorted(names)]

    def size(self) -> int:
        """How many records wait (for `/healthz` and the metrics)."""
        try:
            return sum(1 for e in os.scandir(self.directory) if e.name.endswith(SUFFIX))
        except FileNotFoundError:
            return 0

    def read(self, entry: Entry) -> dict[str, Any]:
        raw = entry.path.read_bytes()
        head, _, rest = raw.partition(b"\n")
        key_id, _, blob = rest.partition(b"\n")
        if head + b"\n" != MAGIC or not blob:
            raise SpoolError(f"spool file {entry.id} is not a spool record")
        try:
            plain = self.keyring.open_derived(key_id.decode(), PURPOSE, blob, _aad(entry.id))
        except (CryptoError, UnicodeDecodeError) as e:
            raise SpoolError(f"spool file {entry.id} does not open: {e}") from None
        record = json.loads(plain.decode("utf-8", "surrogatepass"))
        if not isinstance(record, dict) or record.get("spool_id") != entry.id:
            raise SpoolError(f"spool file {entry.id} holds another record")
        return record

    def remove(self, entry: Entry) -> None:
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()
        self._sync_directory()

    @contextlib.contextmanager
    def drain_lock(self) -> Iterator[bool]:
        """Hold the folder's drain lock if no other process does; yields whether it is held.

        An `flock`: the kernel drops it when the holder dies, so a crashed drainer never
        leaves the spool locked.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _sync_directory(self) -> None:
        """The rename (or unlink) itself survives a power cut only once the folder is synced."""
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _aad(spool_id: str) -> bytes:
    return f"tipline:v1:spool:{spool_id}".encode()
