"""The Lua scripts behind :class:`~authcore.sessions.redis.RedisSessionStore`.

Every change that touches more than one key runs as one script, so it is atomic on the
server (Redis runs a script to its end before any other command): a rotation is a
compare-and-swap however many instances race, and no crash between two writes can leave
a refresh hash pointing at nothing. Python never reads a value to decide what to write.

Key layout, ``P`` being the prefix (``authcore:``); ``H(x)`` is the first 32 hex digits of
SHA-256(x), so a key listing reveals no session id (usable as an access token's ``sid``)
and no login:

* ``P s:H(sid)``: a hash, the session: ``sid login provider identity created last idle abs
  revoked rh lk`` (``rh``: the current refresh hash in hex; ``lk``: ``H(login)``).
* ``P r:<refresh hash hex>``: ``c:H(sid)`` for the current hash, ``u:H(sid)`` once rotated.
* ``P u:H(sid)``: a set, the session's used refresh hashes (hex), so purging finds them.
* ``P l:H(login)``: a sorted set, the login's sessions (members ``H(sid)``, scored by
  creation time), for :meth:`sessions_of`.
* ``P sessions``: a sorted set of every session scored by the time it ends (``-inf`` once
  revoked), so :meth:`purge` finds the dead ones without scanning.

Times are passed and stored as Python's ``repr`` of a float and only compared inside the
scripts (``tonumber``); Lua never turns a number back into text, which would round it.
Keys of one session share the session key's TTL (``PTTL`` copied inside the script).
"""

from __future__ import annotations

from typing import Final

#: The fields :func:`RedisSessionStore._record` reads, in this order, from the script replies.
RECORD_FIELDS: Final = ("sid", "login", "provider", "created", "last", "idle", "abs", "revoked", "identity")

# KEYS: session, refresh, all-sessions index, login index.
# ARGV: sid login provider identity created last idle abs revoked rh-hex lk end-score ttl-ms H(sid)
CREATE: Final = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 'sid' end
  return 'hash'
end
redis.call('HSET', KEYS[1], 'sid', ARGV[1], 'login', ARGV[2], 'provider', ARGV[3], 'identity', ARGV[4],
  'created', ARGV[5], 'last', ARGV[6], 'idle', ARGV[7], 'abs', ARGV[8], 'revoked', ARGV[9],
  'rh', ARGV[10], 'lk', ARGV[11])
redis.call('PEXPIRE', KEYS[1], ARGV[13])
redis.call('SET', KEYS[2], 'c:' .. ARGV[14], 'PX', ARGV[13])
redis.call('ZADD', KEYS[3], ARGV[12], ARGV[14])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[14])
local ttl = redis.call('PTTL', KEYS[4])
if ttl < tonumber(ARGV[13]) then redis.call('PEXPIRE', KEYS[4], ARGV[13]) end
return 'ok'
"""

# KEYS: old refresh, new refresh, all-sessions index.  ARGV: prefix now now+idle old-hex new-hex
# Replies: {'ok', <RECORD_FIELDS values>} | {'reused', sid} | {'unknown'} | {'ended'} | {'expired'} | {'clash'}
ROTATE: Final = """
local state = redis.call('GET', KEYS[1])
if not state then return {'unknown'} end
local hs = string.sub(state, 3)
local skey = ARGV[1] .. 's:' .. hs
if string.sub(state, 1, 1) == 'u' then
  local found = redis.call('HMGET', skey, 'sid', 'lk')
  if not found[1] then return {'unknown'} end
  redis.call('HSET', skey, 'revoked', '1')
  redis.call('ZADD', KEYS[3], '-inf', hs)
  redis.call('ZREM', ARGV[1] .. 'l:' .. found[2], hs)
  redis.call('PUBLISH', ARGV[1] .. 'revoked', found[1])
  return {'reused', found[1]}
end
local f = redis.call('HMGET', skey, 'revoked', 'idle', 'abs')
if not f[1] then return {'unknown'} end
if f[1] == '1' then return {'ended'} end
local now = tonumber(ARGV[2])
if now >= tonumber(f[2]) or now >= tonumber(f[3]) then return {'expired'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'clash'} end
local idle = ARGV[3]
if tonumber(f[3]) < tonumber(idle) then idle = f[3] end
local ttl = redis.call('PTTL', skey)
redis.call('HSET', skey, 'last', ARGV[2], 'idle', idle, 'rh', ARGV[5])
redis.call('SET', KEYS[1], 'u:' .. hs, 'KEEPTTL')
local used = ARGV[1] .. 'u:' .. hs
redis.call('SADD', used, ARGV[4])
if ttl > 0 then
  redis.call('SET', KEYS[2], 'c:' .. hs, 'PX', ttl)
  redis.call('PEXPIRE', used, ttl)
else
  redis.call('SET', KEYS[2], 'c:' .. hs)  -- a session key without a TTL (PERSISTed by hand): none here either
end
redis.call('ZADD', KEYS[3], idle, hs)
local reply = redis.call('HMGET', skey, 'sid', 'login', 'provider', 'created', 'last', 'idle', 'abs', 'revoked',
  'identity')
table.insert(reply, 1, 'ok')
return reply
"""

# KEYS: session, all-sessions index.  ARGV: now now+idle H(sid) sid.  Reply: 1 if the session is live.
# (touch, revoke and update_identity compare the stored id: a key name is a truncated hash of it.)
TOUCH: Final = """
local f = redis.call('HMGET', KEYS[1], 'revoked', 'idle', 'abs', 'sid')
if not f[1] or f[1] == '1' or f[4] ~= ARGV[4] then return 0 end
local now = tonumber(ARGV[1])
if now >= tonumber(f[2]) or now >= tonumber(f[3]) then return 0 end
local idle = ARGV[2]
if tonumber(f[3]) < tonumber(idle) then idle = f[3] end
redis.call('HSET', KEYS[1], 'last', ARGV[1], 'idle', idle)
redis.call('ZADD', KEYS[2], idle, ARGV[3])
return 1
"""

# KEYS: session, all-sessions index.  ARGV: prefix H(sid) sid.  Reply: 1 if this call revoked it.
# Revocations (here and a reuse in ROTATE) are published on <prefix>revoked (sessions/redis_feed.py).
REVOKE: Final = """
local f = redis.call('HMGET', KEYS[1], 'revoked', 'lk', 'sid')
if not f[1] or f[1] == '1' or f[3] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
redis.call('ZADD', KEYS[2], '-inf', ARGV[2])
redis.call('ZREM', ARGV[1] .. 'l:' .. f[2], ARGV[2])
redis.call('PUBLISH', ARGV[1] .. 'revoked', ARGV[3])
return 1
"""

# KEYS: session.  ARGV: identity-JSON sid.  Reply: 1 if the session exists (HSET alone would create one).
UPDATE_IDENTITY: Final = """
if redis.call('HGET', KEYS[1], 'sid') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'identity', ARGV[1])
return 1
"""

# KEYS: refresh.  ARGV: prefix.  Reply: the session id of a current or used hash, or nil.
SESSION_OF: Final = """
local state = redis.call('GET', KEYS[1])
if not state then return false end
return redis.call('HGET', ARGV[1] .. 's:' .. string.sub(state, 3), 'sid')
"""

# KEYS: login index.  ARGV: prefix.  Reply: one RECORD_FIELDS array per session; members whose
# session is gone (its TTL ran out) are dropped from the index on the way.
SESSIONS_OF: Final = """
local out = {}
for _, hs in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', ARGV[1] .. 's:' .. hs, 'sid', 'login', 'provider', 'created', 'last', 'idle', 'abs',
    'revoked', 'identity')
  if f[1] then table.insert(out, f) else redis.call('ZREM', KEYS[1], hs) end
end
return out
"""

# KEYS: all-sessions index.  ARGV: prefix now batch.  Reply: {sessions deleted, index entries looked at}.
PURGE: Final = """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local deleted = 0
for _, hs in ipairs(members) do
  local skey = ARGV[1] .. 's:' .. hs
  local f = redis.call('HMGET', skey, 'rh', 'lk')
  if f[1] then
    redis.call('DEL', ARGV[1] .. 'r:' .. f[1])
    local used = ARGV[1] .. 'u:' .. hs
    for _, old in ipairs(redis.call('SMEMBERS', used)) do redis.call('DEL', ARGV[1] .. 'r:' .. old) end
    redis.call('DEL', used, skey)
    redis.call('ZREM', ARGV[1] .. 'l:' .. f[2], hs)
    deleted = deleted + 1
  end
  redis.call('ZREM', KEYS[1], hs)
end
return {deleted, #members}
"""
