"""Envelope encryption: AES-256-GCM data keys wrapped by named master keys.

Pure functions over bytes. The associated data binds every ciphertext to the place it lives
(table, column, row), so a ciphertext copied into another row or column fails to open.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"  # ciphertext format: version byte, 12-byte nonce, AES-GCM ciphertext+tag
NONCE_BYTES = 12
KEY_BYTES = 32


class CryptoError(Exception):
    """A ciphertext could not be opened: wrong key, wrong place, or tampered."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt under `key`; the result opens only with the same key and associated data."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a `seal` result; raises CryptoError on any mismatch."""
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != VERSION:
        raise CryptoError("unknown ciphertext format")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise CryptoError("ciphertext does not open here (wrong key, row or column)") from None


def place(table: str, column: str, row_id: str) -> bytes:
    """Associated data naming where a ciphertext is stored."""
    return f"tipline:v1:{table}:{column}:{row_id}".encode()


class MasterKeyring:
    """Named master keys; the first wraps new data keys, the others only unwrap old ones."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one master key is required")
        self._keys = dict(keys)
        self.current_id = keys[0][0]

    def __contains__(self, key_id: str) -> bool:
        return key_id in self._keys

    def wrap(self, data_key: bytes, key_ref: str) -> tuple[str, bytes]:
        """Wrap a data key under the current master key; returns (master key id, wrapped)."""
        aad = f"tipline:v1:datakey:{key_ref}".encode()
        return self.current_id, seal(self._keys[self.current_id], data_key, aad)

    def unwrap(self, master_id: str, wrapped: bytes, key_ref: str) -> bytes:
        key = self._keys.get(master_id)
        if key is None:
            raise CryptoError(f"master key {master_id!r} is not in TIPLINE_MASTER_KEYS")
        return open_sealed(key, wrapped, f"tipline:v1:datakey:{key_ref}".encode())

    def seal_derived(self, purpose: str, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt under an HKDF subkey of the current master key (no data key, no database:
        the spool); returns (master key id, ciphertext)."""
        key = subkey(self._keys[self.current_id], purpose)
        return self.current_id, seal(key, plaintext, aad)

    def derived_hash(self, purpose: str, value: str) -> str:
        """`keyed_hash` under an HKDF subkey of the current master key (no database needed)."""
        return keyed_hash(subkey(self._keys[self.current_id], purpose), value)

    def open_derived(self, master_id: str, purpose: str, blob: bytes, aad: bytes) -> bytes:
        key = self._keys.get(master_id)
        if key is None:
            raise CryptoError(f"master key {master_id!r} is not in TIPLINE_MASTER_KEYS")
        return open_sealed(subkey(key, purpose), blob, aad)


def subkey(root: bytes, purpose: str) -> bytes:
    """HKDF-SHA256 subkey of the lookup key, one per purpose (phones, message sids, limits)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"tipline:{purpose}".encode()
    ).derive(root)


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 hex digest: a stable lookup handle that cannot be reversed without the key."""
    return hmac.digest(key, value.encode("utf-8", "surrogatepass"), "sha256").hex()
