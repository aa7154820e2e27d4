"""Server-side sessions in Redis (docs/rules.md §Accounts and access).

The cookie holds a random token; Redis holds only its SHA-256 → user id, so a Redis dump
cannot be replayed as cookies. Losing Redis signs everybody out and loses nothing else.
"""

from __future__ import annotations

import hashlib
import secrets

from redis.asyncio import Redis

BASE_NAME = "ipx_session"  # the cookie's name: Settings.cookie_name(BASE_NAME)


def _key(token: str) -> str:
    return "market:session:" + hashlib.sha256(token.encode()).hexdigest()


async def create(redis: Redis, user_id: int, ttl_seconds: int) -> str:
    token = secrets.token_urlsafe(32)
    await redis.set(_key(token), str(user_id), ex=ttl_seconds)
    return token


async def user_id(redis: Redis, token: str, ttl_seconds: int) -> int | None:
    """The user of a session, sliding its expiry forward."""
    if not token or len(token) > 100:
        return None
    key = _key(token)
    pipe = redis.pipeline(transaction=False)
    pipe.get(key)
    pipe.expire(key, ttl_seconds)  # no-op for a missing key (XX needs Redis 7; wheel has 6.2)
    value, _ = await pipe.execute()
    return int(value) if value is not None else None


async def destroy(redis: Redis, token: str) -> None:
    await redis.delete(_key(token))
