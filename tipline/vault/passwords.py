"""Password and passphrase hashing (argon2id); tests make it cheap with `use_fast_hashing`."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHERS: dict[str, PasswordHasher] = {"current": PasswordHasher()}


def hasher() -> PasswordHasher:
    return _HASHERS["current"]


def use_fast_hashing() -> None:
    """Test suites only: argon2 at minimum cost, so thousands of logins stay quick."""
    _HASHERS["current"] = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def hash_secret(secret: str) -> str:
    return hasher().hash(secret)


def verify_secret(stored: str, candidate: str) -> bool:
    try:
        return hasher().verify(stored, candidate)
    except (VerificationError, InvalidHashError):
        return False
