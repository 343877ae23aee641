"""The Redis session store's :class:`~authcore.sessions.shared.SharedState` methods, as a mixin.

Every method is one round trip: a single command or one Lua script, so a check-and-count
is atomic however many instances race (Redis runs a script to its end before any other
command). Key layout, ``P`` being the store's prefix and ``H(x)`` the first 32 hex digits
of SHA-256(x) (:func:`key_hash`), so no login, address or SSO
state ever appears in a key name:

* ``P t:H(key)``: a counter, a hash ``c`` (count) ``e`` (when its window ends, the caller's
  clock, Python's ``repr`` of a float); its TTL is the window, so it frees itself.
* ``P o:H(key)``: a claim (``SET NX PX``), living *ttl* milliseconds.
* ``P k:H(name:length)``: an agreed secret, in hex. It has **no** TTL on purpose: it signs SSO state
  cookies, and a lapse would void every pending SSO login at a random moment. Whoever can
  read it can forge an SSO state cookie, but not complete a login (the code, the PKCE
  verifier's challenge and the nonce are checked by the identity provider and the
  provider); and whoever can read this Redis can read the sessions anyway.

Errors are the store's: unreachable, slow or read-only Redis is
:class:`~authcore.errors.ProviderUnavailable` ("session store unavailable").
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError
from .shared import Tally

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

    from .redis_loop import LoopCalls

__all__ = ["RedisSharedState"]

# KEYS: counters.  ARGV: now now+window window-ms limit... ('-' for none).
# Reply: {count, ends} per key as it was before; counted only if no key held its limit.
# A counter at 0 (all given back) starts a new window, as an absent or ended one does.
HIT: Final = """
local now = tonumber(ARGV[1])
local out = {}
local refused = false
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'c', 'e')
  local c, e = 0, ARGV[1]
  if f[1] and now < tonumber(f[2]) then c = tonumber(f[1]); e = f[2] end
  out[i] = {c, e}
  local limit = ARGV[3 + i]
  if limit ~= nil and limit ~= '-' and c >= tonumber(limit) then refused = true end
end
if refused then return out end
for i, key in ipairs(KEYS) do
  if out[i][1] == 0 then
    redis.call('HSET', key, 'c', 1, 'e', ARGV[2])
    redis.call('PEXPIRE', key, ARGV[3])
  else
    redis.call('HINCRBY', key, 'c', 1)
  end
end
return out
"""

# KEYS: counters.  ARGV: now.  Reply: {count, ends} per key.
COUNTS: Final = """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'c', 'e')
  if f[1] and now < tonumber(f[2]) then out[i] = {tonumber(f[1]), f[2]} else out[i] = {0, ARGV[1]} end
end
return out
"""

# KEYS: counters.  Takes one back from each counter above zero.
GIVE_BACK: Final = """
for _, key in ipairs(KEYS) do
  local c = redis.call('HGET', key, 'c')
  if c and tonumber(c) > 0 then redis.call('HINCRBY', key, 'c', -1) end
end
return 0
"""

# KEYS: given back..., checked..., forgotten...  ARGV: now n-given n-checked limit per checked key.
# Reply: {count, ends} per checked key; the forgotten keys are dropped unless one checked key is at its limit.
SETTLE: Final = """
local now = tonumber(ARGV[1])
local given, checked = tonumber(ARGV[2]), tonumber(ARGV[3])
if given == 0 and redis.call('EXISTS', unpack(KEYS)) == 0 then
  local out = {}
  for j = 1, checked do out[j] = {0, ARGV[1]} end
  return out
end
for i = 1, given do
  local c = redis.call('HGET', KEYS[i], 'c')
  if c and tonumber(c) > 0 then redis.call('HINCRBY', KEYS[i], 'c', -1) end
end
local out = {}
local refused = false
for j = 1, checked do
  local f = redis.call('HMGET', KEYS[given + j], 'c', 'e')
  if f[1] and now < tonumber(f[2]) then out[j] = {tonumber(f[1]), f[2]} else out[j] = {0, ARGV[1]} end
  if out[j][1] >= tonumber(ARGV[3 + j]) then refused = true end
end
if not refused then
  for k = given + checked + 1, #KEYS do redis.call('DEL', KEYS[k]) end
end
return out
"""

# KEYS: secret.  ARGV: a fresh random value.  Reply: the stored value (this one if there was none).
AGREED_SECRET: Final = """
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


#: Hex digits of SHA-256 in key names: 128 bits, plenty against collisions, nothing to reverse.
_KEY_HASH_DIGITS: Final = 32


def key_hash(value: str) -> str:
    """The name part a session id, login or counter gets in keys: truncated hex SHA-256, never the value itself."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_KEY_HASH_DIGITS]


def _tallies(reply: Sequence[Sequence[Any]]) -> list[Tally]:
    return [Tally(int(count), float(ends)) for count, ends in reply]


class RedisSharedState:
    """The :class:`~authcore.sessions.shared.SharedState` methods of the Redis session store.

    Uses the store's client, prefix, key hash and error handling (``_command``, ``_run``);
    :meth:`_register_shared` registers the scripts (nothing is sent until the first call).
    """

    if TYPE_CHECKING:
        _client: Redis
        _prefix: str
        _loop_calls: LoopCalls | None

        def _check_open(self) -> None: ...
        def _command(self, *command: str | int | bytes) -> Any: ...
        def _run(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any: ...

    def _register_shared(self) -> None:
        register = self._client.register_script
        self._hit = register(HIT)
        self._counts = register(COUNTS)
        self._give_back = register(GIVE_BACK)
        self._agreed_secret = register(AGREED_SECRET)
        self._settle = register(SETTLE)

    def _shared_key(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{key_hash(key)}"

    def _counter_keys(self, keys: Sequence[str]) -> Iterator[str]:
        return (self._shared_key("t", key) for key in keys)

    def hit(self, keys: Sequence[str], limits: Sequence[int] | None, *, window: float, now: float) -> list[Tally]:
        """Count one event under every key unless one holds its limit (see :meth:`SharedState.hit`)."""
        if not keys:
            return []
        if limits is not None and len(limits) != len(keys):
            raise ValueError("one limit per key")
        if not (math.isfinite(now) and math.isfinite(window) and window > 0):
            raise ValueError("now must be finite and window positive")
        bounds = ["-"] * len(keys) if limits is None else [str(int(limit)) for limit in limits]
        window_ms = max(1, math.ceil(window * 1000))
        args: list[str | int] = [repr(float(now)), repr(float(now + window)), window_ms, *bounds]
        return _tallies(self._run(self._hit, list(self._counter_keys(keys)), args))

    def counts(self, keys: Sequence[str], *, now: float) -> list[Tally]:
        """The current tallies (see :meth:`SharedState.counts`)."""
        if not keys:
            return []
        return _tallies(self._run(self._counts, list(self._counter_keys(keys)), [repr(float(now))]))

    def give_back(self, keys: Sequence[str]) -> None:
        """Take one event back from each key (see :meth:`SharedState.give_back`)."""
        if keys:
            self._run(self._give_back, list(self._counter_keys(keys)), [])

    def forget(self, keys: Sequence[str]) -> None:
        """Drop the counters of *keys* (one ``DEL``)."""
        if keys:
            self._command("DEL", *self._counter_keys(keys))

    def settle(
        self,
        give_back: Sequence[str],
        check: Sequence[str],
        limits: Sequence[int],
        forget: Sequence[str],
        *,
        now: float,
    ) -> list[Tally]:
        """Give back, check, forget, in one script (see :meth:`SharedState.settle`)."""
        keys, args = self._settlement(give_back, check, limits, forget, now)
        return _tallies(self._run(self._settle, keys, args)) if keys else []

    async def asettle(
        self,
        give_back: Sequence[str],
        check: Sequence[str],
        limits: Sequence[int],
        forget: Sequence[str],
        *,
        now: float,
    ) -> list[Tally]:
        """:meth:`settle` awaited by a coroutine on the event loop, without the bridge (a login
        on the Redis store, ``WebLogin.awaited``); in a worker thread where the blocking client stays."""
        if self._loop_calls is None:
            import asyncio

            return await asyncio.to_thread(self.settle, give_back, check, limits, forget, now=now)
        keys, args = self._settlement(give_back, check, limits, forget, now)
        if not keys:
            return []
        self._check_open()
        return _tallies(await self._loop_calls.ascript(self._settle, keys, args))

    def _settlement(
        self, give_back: Sequence[str], check: Sequence[str], limits: Sequence[int], forget: Sequence[str], now: float
    ) -> tuple[list[str], list[str | int]]:
        """The SETTLE script's keys and arguments (no keys: nothing to do)."""
        if len(limits) != len(check):
            raise ValueError("one limit per checked key")
        keys = [*self._counter_keys(give_back), *self._counter_keys(check), *self._counter_keys(forget)]
        args: list[str | int] = [repr(float(now)), len(give_back), len(check), *(int(limit) for limit in limits)]
        return keys, args

    def claim(self, key: str, *, ttl: float) -> bool:
        """``SET NX PX``: ``True`` the first time *key* is claimed within *ttl* seconds."""
        ttl_ms = max(1, math.ceil(ttl * 1000))
        # None when the key exists (not claimed), OK when set.
        return self._command("SET", self._shared_key("o", key), b"1", "NX", "PX", ttl_ms) is not None

    def agreed_secret(self, name: str, length: int = 32) -> bytes:
        """The secret every instance agrees on for *name*: the first caller's random bytes, kept without TTL."""
        if length < 1:
            raise ValueError("length must be positive")
        fresh = secrets.token_hex(length)
        stored = self._run(self._agreed_secret, [self._shared_key("k", f"{name}:{length}")], [fresh])
        try:
            value = bytes.fromhex(stored.decode("ascii"))
        except (AttributeError, UnicodeDecodeError, ValueError):
            value = b""
        if len(value) != length:
            raise ConfigError(f"the shared secret {name!r} in the session store is malformed")
        return value
