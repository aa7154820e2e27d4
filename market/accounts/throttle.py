"""Sign-in throttling (docs/rules.md §Security): guessing slows down, nobody is locked out.

Each try is counted *before* its password is checked, in one Redis script, so parallel
tries cannot all pass a check made before any of them failed: of 50 tries sent at once
for one address, at most `Settings.login_max_failures` reach the password check.

Tries are counted per pair (account, client address): the first `login_max_failures`
failures within `login_window_seconds` go at full speed; after them each try must wait
`login_delay_seconds` × 2^(failures beyond the limit), at most `login_max_delay_seconds`.
Someone guessing from their own address slows only their own tries at that account: the
real user, from another address, signs in as usual. Per client address alone, spraying
many accounts, the same holds at `login_client_factor` × the limit.

The client address is the connection's, or — only when the connection comes from one of
`Settings.trusted_proxies` — the last address in X-Forwarded-For not itself a trusted
proxy (market/web.py `client_address`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from market.settings import Settings

# KEYS: the pair's key, the client's key. ARGV: now (ms), pair limit, client limit,
# base delay (ms), longest delay (ms), window (ms).
# A key is a hash {n: tries counted, at: earliest next try (ms)}. Returns the ms to wait
# (0: this try is counted and may check its password).
_RESERVE = """
local now = tonumber(ARGV[1])
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local base, longest, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local wait = 0
for i, key in ipairs(KEYS) do
  local at = tonumber(redis.call('HGET', key, 'at') or '0')
  if at - now > wait then wait = at - now end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local n = redis.call('HINCRBY', key, 'n', 1)
  local over = n - limits[i]
  if over >= 0 then
    local delay = math.min(base * (2 ^ over), longest)
    redis.call('HSET', key, 'at', now + delay)
  end
  redis.call('PEXPIRE', key, window + longest)
end
return 0
"""
# A success: the pair starts afresh; the client's count gives back this try.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  local n = redis.call('HINCRBY', KEYS[2], 'n', -1)
  if n <= 0 then redis.call('DEL', KEYS[2]) end
end
return 0
"""


@dataclass(frozen=True)
class Attempt:
    pair_key: str
    client_key: str


def attempt_of(email: str, client: str) -> Attempt:
    account = hashlib.sha256(email.encode()).hexdigest()[:32]  # no address in Redis keys
    return Attempt(
        pair_key=f"market:loginthrottle:pair:{account}:{client}",
        client_key=f"market:loginthrottle:client:{client}",
    )


async def reserve(redis: Redis, settings: Settings, attempt: Attempt, now_ms: int) -> int:
    """Count this try; 0 if it may check its password, else the seconds to wait."""
    limit = settings.login_max_failures
    args = (
        now_ms,
        limit,
        limit * settings.login_client_factor,
        settings.login_delay_seconds * 1000,
        settings.login_max_delay_seconds * 1000,
        settings.login_window_seconds * 1000,
    )
    wait_ms = await redis.eval(  # type: ignore[misc]
        _RESERVE, 2, attempt.pair_key, attempt.client_key, *(str(a) for a in args)
    )
    return 0 if int(wait_ms) <= 0 else max(1, -(-int(wait_ms) // 1000))


async def succeeded(redis: Redis, attempt: Attempt) -> None:
    await redis.eval(_SUCCEEDED, 2, attempt.pair_key, attempt.client_key)  # type: ignore[misc]
