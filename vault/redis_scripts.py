"""The Lua scripts of :class:`vault.redis_store.RedisVault`: each write is one atomic script.

Keys: ``KEYS[1]`` is the id index (a sorted set of hex ids, all scores 0, so
``ZRANGE BYLEX`` walks ids in byte order); the record keys follow. Values are
:mod:`vault.store_blob` byte strings, whose leading decimal ``expires`` the
scripts read so that an id whose record has expired by the caller's clock
counts as free (Redis's own PX expiry may lag behind that clock).
"""

from __future__ import annotations

from typing import Final

# ARGV[1] = now (unix seconds); then per record: value, px (0 = persistent), hex id.
PUT_NEW: Final = """
local now = tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local base = 2 + (i - 2) * 3
  local value, px, member = ARGV[base], tonumber(ARGV[base + 1]), ARGV[base + 2]
  local current = redis.call('GET', KEYS[i])
  local free = not current
  if current then
    local expires = string.match(current, '^(%d+) ')
    free = expires ~= nil and tonumber(expires) <= now
  end
  if free then
    if px > 0 then
      redis.call('SET', KEYS[i], value, 'PX', px)
    else
      redis.call('SET', KEYS[i], value)
    end
    redis.call('ZADD', KEYS[1], 0, member)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# ARGV[1] = now; then one hex id per record key. Returns the number of live records deleted.
DELETE: Final = """
local now = tonumber(ARGV[1])
local live = 0
for i = 2, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if current then
    local expires = string.match(current, '^(%d+) ')
    if expires == nil or tonumber(expires) > now then
      live = live + 1
    end
    redis.call('DEL', KEYS[i])
  end
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return live
"""

# KEYS[1] = record key; ARGV[1] = expected value, ARGV[2] = new value. Keeps the TTL.
REPLACE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""

# KEYS[1] = index; then record keys; ARGV = their hex ids. Drops index entries whose key is
# gone (purged by PX), atomically, so a record stored meanwhile is never dropped from the index.
FORGET_GONE: Final = """
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return n
"""
