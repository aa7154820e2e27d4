"""Password hashing with argon2id (docs/rules.md §Accounts and access), run off the event
loop: a hash costs ~50 ms."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2-cffi defaults: RFC 9106 low-memory profile
# Verified against when the e-mail is unknown, so both answers take the same time.
_DUMMY = _hasher.hash("not a real password, only for timing")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
