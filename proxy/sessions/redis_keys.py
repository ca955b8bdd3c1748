"""Key names and server-side scripts of the Redis session store.

Keys (``P`` is the configured prefix; ``{...}`` is a Redis Cluster hash tag):

- ``P{s:<sid>}:session``: hash of one session (identity JSON, clocks, family
  state ``rtc``/``rtp``/``rtr``); ``P{s:<sid>}:lock``: its refresh lock. Same tag,
  so the rotate script and the lock live on one slot.
- ``P{t:<hash>}``: refresh-token index, hash ``sid``, ``fam``, ``u``.
- ``P{u:<subject>}:sessions`` (sorted set sid -> absolute expiry) and
  ``P{u:<subject>}:mark`` (the user's revocation mark); ``subject`` is a hash
  of ``sub``, so no e-mail address appears in a key name.
- ``P{all}:epoch``: the global revocation epoch.
- ``P{r:<namespace>:<digest>}``: replay guard entries.
- ``P{f:<digest>}:n`` / ``P{f:<digest>}:lock``: failure counter and lockout.

The per-request check reads ``{s:..}``, ``{u:..}`` and ``{all}``: on a single
server or Sentinel that is one script call (shared by the checks of one event-loop
turn); on a Cluster a pipeline split by node and sent to all of them
concurrently (one round trip per node, in parallel). Times are the gateway's
clock, passed in; Redis TTLs only collect garbage (a minute after an entry can
last matter), so semantics never depend on the server's clock.
"""

from __future__ import annotations

from typing import Final

GC_SLACK_MS: Final = 60_000


class RedisKeys:
    """Key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("sessions: key_prefix cannot contain braces")
        self._p = prefix

    def session(self, sid: str) -> str:
        return f"{self._p}{{s:{sid}}}:session"

    def lock(self, sid: str) -> str:
        return f"{self._p}{{s:{sid}}}:lock"

    def token(self, token_hash: str) -> str:
        return f"{self._p}{{t:{token_hash}}}"

    def user_sessions(self, subject: str) -> str:
        return f"{self._p}{{u:{subject}}}:sessions"

    def user_mark(self, subject: str) -> str:
        return f"{self._p}{{u:{subject}}}:mark"

    def epoch(self) -> str:
        return f"{self._p}{{all}}:epoch"

    def replay(self, namespace: str, digest: str) -> str:
        return f"{self._p}{{r:{namespace}:{digest}}}"

    def failures(self, digest: str) -> str:
        return f"{self._p}{{f:{digest}}}:n"

    def lockout(self, digest: str) -> str:
        return f"{self._p}{{f:{digest}}}:lock"


# Garbage-collection TTL of a session hash: a minute after it can last be valid.
_EXPIRE_SESSION = """
local ends = math.min(tonumber(f_abs), tonumber(seen) + tonumber(f_idle))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.floor((ends - now) * 1000)) + tonumber(ARGV[#ARGV]))
"""

# KEYS: epoch, then (session, user mark) per check. The revocation checks of one
# event-loop turn as ONE command (proxy.sessions.batch). One bulk string per check,
# in order (one flat reply per check parses far cheaper than nested arrays in
# redis-py's pure-Python parser): "" when the session hash has no sub, else
# "c\nseen\nabs\nidle\nmark\nepoch\nsub", absent values empty, the sub last
# because only it may hold a newline. Not on a Cluster (the keys' slots differ).
CHECK_MANY: Final = """
local epoch = redis.call('GET', KEYS[1]) or ''
local out = {}
for j = 2, #KEYS, 2 do
  local f = redis.call('HMGET', KEYS[j], 'sub', 'c', 'seen', 'abs', 'idle')
  if not f[1] then
    out[#out + 1] = ''
  else
    local o = {}
    for i = 2, 5 do o[i - 1] = f[i] or '' end
    o[5] = redis.call('GET', KEYS[j + 1]) or ''
    o[6] = epoch
    o[7] = f[1]
    out[#out + 1] = table.concat(o, '\\n')
  end
end
return out
"""

# KEYS: session. ARGV: now, slack_ms. Returns 1 written, 2 already newer, 0 missing or dead.
TOUCH: Final = (
    """
local f = redis.call('HMGET', KEYS[1], 'seen', 'abs', 'idle')
if not f[1] then return 0 end
local now = tonumber(ARGV[1])
local f_abs, f_idle = f[2], f[3]
if now >= tonumber(f_abs) or now >= tonumber(f[1]) + tonumber(f_idle) then return 0 end
if now <= tonumber(f[1]) then return 2 end
local seen = ARGV[1]
redis.call('HSET', KEYS[1], 'seen', seen)
"""
    + _EXPIRE_SESSION
    + "return 1\n"
)

# KEYS: session. ARGV: expected current hash, new hash, now, slack_ms.
# Compare-and-set on the family's current token: 1 rotated, 0 changed underneath.
ROTATE: Final = (
    """
local f = redis.call('HMGET', KEYS[1], 'rtc', 'seen', 'abs', 'idle')
if f[1] ~= ARGV[1] then return 0 end
local now = tonumber(ARGV[3])
local f_abs, f_idle = f[3], f[4]
local seen = ARGV[3]
if tonumber(f[2]) > now then seen = f[2] end
redis.call('HSET', KEYS[1], 'rtp', ARGV[1], 'rtc', ARGV[2], 'rtr', ARGV[3], 'seen', seen)
"""
    + _EXPIRE_SESSION
    + "return 1\n"
)

# KEYS: lock. ARGV: owner token. Deletes the lock only if we still own it.
UNLOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: mark. ARGV: value, ttl_ms ('0': keep forever). Marks only move forward.
MARK: Final = """
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1])
else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
"""

# KEYS: entry. ARGV: now, expires, ttl_ms. 1 first use, 0 replay.
FIRST_USE: Final = """
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: counter, lockout. ARGV: now, window end if new, slack_ms,
# lock_after (0: never), lock until, lock ttl_ms. Returns the count in the window.
FAILURE: Final = """
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'n', 'end')
local n, e = 0, ARGV[2]
if f[2] and tonumber(f[2]) > now then n = tonumber(f[1]); e = f[2] end
n = n + 1
redis.call('HSET', KEYS[1], 'n', n, 'end', e)
local ttl = math.max(1, math.floor((tonumber(e) - now) * 1000)) + tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
local la = tonumber(ARGV[4])
if la > 0 and n >= la then
  local cur = redis.call('GET', KEYS[2])
  if (not cur) or tonumber(cur) < tonumber(ARGV[5]) then
    redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
  end
end
return n
"""
