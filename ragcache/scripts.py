"""Server-side scripts: each does in one round trip what would otherwise take several."""

from __future__ import annotations

from redis.commands.core import Script


def by_digest(text: str) -> Script:
    """A script called by its SHA-1 (EVALSHA), so its text is not sent and hashed on every
    call; redis-py loads it once wherever Redis does not know it yet (NOSCRIPT)."""
    return Script(None, text.encode())  # type: ignore[arg-type]  # bytes need no client to encode


# The whole read side of a cached answer in one call: the run-time switches, the
# generations of the scope, the retrieval entry they lead to, the answer that entry's
# context leads to, and the statistics of what was found. When the retrieval misses, the
# question's embedding (or the lock to compute it) comes along, so a complete miss saves
# a round trip too.
#
# KEYS: the generations hash, the switches hash, the statistics bucket, the question's emb
# key, the catalog hash.
# The ret, ans and lock keys are built inside from the scope it reads, so the script is
# not yet fit for Redis Cluster (those keys are not declared, nor hash-tagged together).
# ARGV[1], JSON: prefix, stats_ttl, read (the ask may read the cache), answer_cacheable,
#   defaults (emb, ret, ans: on or off when no switch overrides them), ret_suffix,
#   ans_stem, token and lock_ttl (of the embedding's lock), ids (collection ids, sorted),
#   catalog (the version of the catalog copy the ids were resolved from, or null).
# Returns {"catalog-stale"} when that is not the version of the catalog copy in Redis,
# {"gen-missing"} when a generation copy is missing, else {"ok", scope digest,
# ret value or "", ans value or "", emb status (0 not asked, 1 value, 2 locked for this
# caller, 3 locked by another), emb value or "", the switches as HGETALL gives them}.
LOOKUP = """
local a = cjson.decode(ARGV[1])
local catalog = a['catalog']
if catalog and catalog ~= cjson.null and redis.call('HGET', KEYS[5], 'v') ~= catalog then
  return {'catalog-stale'}
end
local switches = redis.call('HGETALL', KEYS[2])
local on = {}
for layer, default in pairs(a['defaults']) do on[layer] = default end
for i = 1, #switches, 2 do
  if on[switches[i]] ~= nil then on[switches[i]] = switches[i + 1] == '1' end
end
local ids = a['ids']
local parts = {}
if #ids > 0 then
  local gens = redis.call('HMGET', KEYS[1], unpack(ids))
  for i = 1, #ids do
    if not gens[i] then return {'gen-missing'} end
    parts[i] = ids[i] .. ':' .. gens[i]
  end
end
local scope = redis.sha1hex(table.concat(parts, ','))
local prefix = a['prefix']
local read_ret = a['read'] and on['ret']
local read_ans = read_ret and a['answer_cacheable'] and on['ans']
local ret, ans = '', ''
local function count(field, amount)
  redis.call('HINCRBYFLOAT', KEYS[3], field, tonumber(amount) or 0)
end
if read_ret then
  redis.call('EXPIRE', KEYS[3], a['stats_ttl'])
  ret = redis.call('GET', prefix .. 'ret:' .. scope .. a['ret_suffix']) or ''
  if ret ~= '' then
    local entry = cjson.decode(ret)
    count('ret:hit', 1)
    count('ret:saved_ms', entry['ms'])
    if read_ans then
      ans = redis.call('GET', prefix .. 'ans:' .. a['ans_stem'] .. entry['ctx']) or ''
      if ans ~= '' then
        local answer = cjson.decode(ans)
        count('ans:hit', 1)
        count('ans:saved_ms', answer['ms'])
        local tokens = (tonumber(answer['prompt_tokens']) or 0) + (tonumber(answer['completion_tokens']) or 0)
        count('ans:saved_tokens', tokens)
        count('ans:saved_cost', answer['cost_usd'])
      else
        count('ans:miss', 1)
      end
    end
  else
    count('ret:miss', 1)
  end
end
local emb_status, emb = 0, ''
if ret == '' and a['read'] and on['emb'] then
  emb = redis.call('GET', KEYS[4]) or ''
  if emb ~= '' then
    emb_status = 1
  elseif redis.call('SET', prefix .. 'lock:' .. KEYS[4], a['token'], 'NX', 'EX', a['lock_ttl']) then
    emb_status = 2
  else
    emb_status = 3
  end
end
return {'ok', scope, ret, ans, emb_status, emb, switches}
"""

# Set copies of generations, never lowering one: a slow writer (or a resync) that read
# an older generation from the database must not undo a newer bump.
# KEYS: the generations hash. ARGV: TTL, then id, generation pairs.
GENERATIONS_RAISE = """
for i = 2, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
-- The TTL is set once, when the copy is made, and never extended: every process re-reads
-- the copies from PostgreSQL at least this often, whatever bumps it may have missed.
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""

# Single-flight in one round trip: the value if there is one, else the lock if free.
# KEYS: value key, lock key. ARGV: token, lock TTL.
# Returns {1, value}, {2, ""} (locked for this caller) or {3, ""} (another holds it).
GET_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return {2, ''} end
return {3, ''}
"""

# Release a single-flight lock only if this holder still owns it.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Delete every entry that cited a document, and the index itself; the entries deleted.
INVALIDATE_DOCUMENT = """
local keys = redis.call('SMEMBERS', KEYS[1])
local deleted = 0
for i = 1, #keys, 500 do
  deleted = deleted + redis.call('UNLINK', unpack(keys, i, math.min(i + 499, #keys)))
end
redis.call('UNLINK', KEYS[1])
return deleted
"""

# Set a key's TTL, or extend it, atomically. KEYS: the key. ARGV: seconds, extend (1/0).
# Returns the new TTL, or -2 when the key does not exist.
EXPIRE = """
local ttl = redis.call('TTL', KEYS[1])
if ttl == -2 then return -2 end
local seconds = tonumber(ARGV[1])
if ARGV[2] == '1' and ttl > 0 then seconds = seconds + ttl end
redis.call('EXPIRE', KEYS[1], seconds)
return seconds
"""
