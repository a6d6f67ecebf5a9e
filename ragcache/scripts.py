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
  redis.call('HINCRBY', KEYS[3], field, amount)
end
local function add(field, amount)
  if amount ~= '0.0' then redis.call('HINCRBYFLOAT', KEYS[3], field, amount) end
end
-- An entry's numbers are in its header line (ragcache.values): no JSON is parsed here. A
-- value without the header of this format is a miss, and is deleted.
local function entry(key, pattern, layer)
  local value = redis.call('GET', key)
  if not value then return '' end
  if string.match(value, pattern) then return value end
  redis.call('UNLINK', key)
  count(layer .. ':corrupt', 1)
  return ''
end
if read_ret then
  redis.call('EXPIRE', KEYS[3], a['stats_ttl'])
  ret = entry(prefix .. 'ret:' .. scope .. a['ret_suffix'], '^r2 %x+ %S+\\n', 'ret')
  if ret ~= '' then
    local ctx, ms = string.match(ret, '^r2 (%x+) (%S+)\\n')
    count('ret:hit', 1)
    add('ret:saved_ms', ms)
    if read_ans then
      ans = entry(prefix .. 'ans:' .. a['ans_stem'] .. ctx, '^a1 %S+ %S+ %S+\\n', 'ans')
      if ans ~= '' then
        local generate_ms, tokens, cost = string.match(ans, '^a1 (%S+) (%S+) (%S+)\\n')
        count('ans:hit', 1)
        add('ans:saved_ms', generate_ms)
        add('ans:saved_tokens', tokens)
        add('ans:saved_cost', cost)
      else
        count('ans:miss', 1)
      end
    end
  else
    count('ret:miss', 1)
  end
end
local ret_missed = ret == ''
if ans ~= '' then ret = '' end  -- a full hit: the answer is all the caller needs
local emb_status, emb = 0, ''
if ret_missed and a['read'] and on['emb'] then
  emb = redis.call('GET', KEYS[4]) or ''
  if emb ~= '' then
    emb_status = 1
  elseif redis.call('SET', prefix .. 'lock:' .. KEYS[4], a['token'], 'NX', 'EX', a['lock_ttl']) then
    emb_status = 2
  else
    emb_status = 3
  end
end
-- With warming on, the question counts toward its collections' popular ones.
local popular = a['popular']
if popular and popular ~= cjson.null then
  redis.call('ZINCRBY', popular['key'], 1, popular['question'])
  redis.call('EXPIRE', popular['key'], popular['ttl'])
  for _, set_key in ipairs(popular['sets']) do
    redis.call('SADD', set_key, popular['key'])
    redis.call('EXPIRE', set_key, popular['ttl'])
  end
end
-- A new question: the scope's earlier questions, for the sem layer, in this same trip.
local sem = {}
if ret_missed and a['read'] and a['answer_cacheable'] and on['sem'] then
  sem = redis.call('HGETALL', prefix .. 'sem:' .. scope .. a['sem_suffix'])
end
return {'ok', scope, ret, ans, emb_status, emb, switches, sem}
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
# KEYS: value key, lock key. ARGV: token, lock TTL, the start every value of the key has
# ("" for any): a value that lacks it is deleted, as a miss.
# Returns {1, value}, {2, ""} (locked for this caller) or {3, ""} (another holds it).
GET_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, #ARGV[3]) ~= ARGV[3] then
  redis.call('UNLINK', KEYS[1])
  value = nil
end
if value then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return {2, ''} end
return {3, ''}
"""

# Release a single-flight lock only if this holder still owns it.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Remember a question in its scope's semantic hash, which holds ARGV[3] questions at most:
# a random older one makes room, so what one lookup reads stays bounded.
# KEYS: the sem hash. ARGV: field, value, max entries, TTL.
SEM_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local room = math.max(tonumber(ARGV[3]), 1)
  while redis.call('HLEN', KEYS[1]) >= room do
    redis.call('HDEL', KEYS[1], redis.call('HRANDFIELD', KEYS[1]))
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# Add an entry to a document's index. The index lives as long as its longest-lived entry
# (its TTL is only ever raised), and each add checks a few random members
# and drops those whose entries are gone (expired, evicted, flushed), so an index of a
# long-lived document does not grow with every entry that ever cited it.
# KEYS: the index. ARGV: the entry's key, its TTL, how many members to check.
# The members it checks are not declared: not fit for Redis Cluster as it stands.
INDEX_ADD = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
for _, member in ipairs(redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[3]))) do
  if redis.call('EXISTS', member) == 0 then redis.call('SREM', KEYS[1], member) end
end
return 1
"""

# Extend a lock only if this holder still owns it (ragcache.leases).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
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
