"""Envelope encryption: known-answer vectors, place binding, tampering, master-key handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tipline.vault import crypto
from tipline.vault.keyring import CACHED_KEYS, Vault

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "crypto_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["aes_gcm"])
def test_known_ciphertexts_still_open(vector: dict[str, str]) -> None:
    key = bytes.fromhex(vector["key"])
    plain = crypto.open_sealed(key, bytes.fromhex(vector["sealed"]), vector["aad"].encode())
    assert plain == bytes.fromhex(vector["plaintext"])


def test_known_lookup_hash_is_stable() -> None:
    v = VECTORS["lookup"]
    sub = crypto.subkey(bytes.fromhex(v["root"]), v["purpose"])
    assert sub.hex() == v["subkey"]
    assert crypto.keyed_hash(sub, v["value"]) == v["hash"]


def test_sealed_text_opens_only_in_its_own_place() -> None:
    key = crypto.new_key()
    blob = crypto.seal(key, b"he has a gun", crypto.place("tip", "body", "row1"))
    assert crypto.open_sealed(key, blob, crypto.place("tip", "body", "row1")) == b"he has a gun"
    for wrong in (
        crypto.place("tip", "body", "row2"),
        crypto.place("tip", "triage", "row1"),
        crypto.place("message", "body", "row1"),
    ):
        with pytest.raises(crypto.CryptoError):
            crypto.open_sealed(key, blob, wrong)


def test_a_flipped_bit_is_detected() -> None:
    key = crypto.new_key()
    blob = bytearray(crypto.seal(key, b"secret", b"aad"))
    blob[-1] ^= 1
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(key, bytes(blob), b"aad")


def test_two_seals_of_the_same_text_differ() -> None:
    key = crypto.new_key()
    assert crypto.seal(key, b"same", b"a") != crypto.seal(key, b"same", b"a")


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(crypto.CryptoError, match="format"):
        crypto.open_sealed(crypto.new_key(), b"\x02" + b"\x00" * 40, b"")


def test_old_master_keys_unwrap_but_only_the_first_wraps() -> None:
    old = crypto.MasterKeyring([("old", b"\x01" * 32)])
    master_id, wrapped = old.wrap(b"k" * 32, "dk1")
    both = crypto.MasterKeyring([("new", b"\x02" * 32), ("old", b"\x01" * 32)])
    assert both.unwrap(master_id, wrapped, "dk1") == b"k" * 32
    assert both.wrap(b"k" * 32, "dk1")[0] == "new"
    with pytest.raises(crypto.CryptoError, match="not in TIPLINE_MASTER_KEYS"):
        crypto.MasterKeyring([("new", b"\x02" * 32)]).unwrap(master_id, wrapped, "dk1")


def test_a_wrapped_key_is_bound_to_its_data_key_row() -> None:
    ring = crypto.MasterKeyring([("m", b"\x01" * 32)])
    master_id, wrapped = ring.wrap(b"k" * 32, "dk1")
    with pytest.raises(crypto.CryptoError):
        ring.unwrap(master_id, wrapped, "dk2")


def test_subkeys_differ_per_purpose() -> None:
    root = crypto.new_key()
    assert crypto.subkey(root, "phone") != crypto.subkey(root, "sid")


def test_a_process_keeps_a_bounded_number_of_plain_data_keys() -> None:
    vault = Vault([("k1", bytes(32))])
    for _ in range(CACHED_KEYS + 10):  # a web worker that only takes new tips
        vault.new_data_key()
    assert 0 < len(vault._unwrapped) <= CACHED_KEYS
