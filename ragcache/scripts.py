"""Server-side scripts: each does in one round trip what would otherwise take several."""

from __future__ import annotations

from typing import Any

from redis.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import Script


def by_digest(text: str) -> Script:
    """A script called by its SHA-1 (EVALSHA), so its text is not sent and hashed on every
    call; redis-py loads it once wherever Redis does not know it yet (NOSCRIPT)."""
    return Script(None, text.encode())  # type: ignore[arg-type]  # bytes need no client to encode


def evaluate(target: Any, script: str, numkeys: int, *keys_and_args: Any) -> Any:
    """EVAL on a client or a pipeline, of one Redis or of a Cluster. redis-py's cluster
    pipeline has no eval() of its own, and would ask a node for the keys of each EVAL
    (COMMAND GETKEYS, a round trip): it is told the node of the first key instead."""
    if isinstance(target, ClusterPipeline) and numkeys:
        node = target.nodes_manager.get_node_from_slot(target.keyslot(keys_and_args[0]))
        return target.execute_command("EVAL", script, numkeys, *keys_and_args, target_nodes=node)
    return target.execute_command("EVAL", script, numkeys, *keys_and_args)


def primaries(target: Any) -> list[Any]:
    """Where a script that scans the keyspace runs, one by one: None for the one Redis, or
    each primary of a Cluster, in a stable order (a scan sees its own server's keys only)."""
    if isinstance(target, RedisCluster):
        return sorted(target.get_primaries(), key=lambda node: node.name)
    return [None]


def evaluate_on(target: Any, node: Any, script: str, *args: Any) -> Any:
    """EVAL of a script that declares no key, on `node` (one of primaries())."""
    if node is None:
        return target.execute_command("EVAL", script, 0, *args)
    return target.execute_command("EVAL", script, 0, *args, target_nodes=node)


# The whole read side of a cached answer in one call: the scope's copies (generations,
# catalog version, run-time switches), the retrieval entry, the answer, and the
# statistics of what was found. When the retrieval misses, the question's embedding (or
# the lock to compute it) and the scope's sem hash come along, so a complete miss saves
# round trips too. Every key is declared and carries the scope's hash tag: on a Redis
# Cluster they share one slot.
#
# KEYS: 1 the scope's gen copy, 2 the statistics bucket, 3 the question's emb key, 4 its
# lock, 5 the ret key, 6 the ans key, 7 the sem hash, 8 the popular questions of the day.
# ARGV[1], JSON: stats_ttl, read (the ask may read the cache), answer_cacheable, defaults
#   (emb, ret, ans, sem: on or off when no switch overrides them), token and lock_ttl (of
#   the embedding's lock), ids (collection ids, sorted), catalog (the version of the
#   catalog copy the ids were resolved from, or null), popular ({question, ttl}, or null
#   when warming is off).
# Returns {"meta-missing"} when the gen copy lacks a field, {"catalog-stale"} when the
# catalog version is not the copy's, else {"ok", scope digest, ret value or "", ans value
# or "", emb status (0 not asked, 1 value, 2 locked for this caller, 3 locked by another),
# emb value or "", the switches (JSON), the sem hash as HGETALL gives it or {}}.
LOOKUP = """
local a = cjson.decode(ARGV[1])
local ids = a['ids']
local fields = {'catalog', 'switches'}
for i = 1, #ids do fields[#fields + 1] = ids[i] end
local copies = redis.call('HMGET', KEYS[1], unpack(fields))
for i = 1, #fields do
  if not copies[i] then return {'meta-missing'} end
end
local catalog = a['catalog']
if catalog and catalog ~= cjson.null and copies[1] ~= catalog then
  return {'catalog-stale'}
end
local on = {}
for layer, default in pairs(a['defaults']) do on[layer] = default end
for name, value in pairs(cjson.decode(copies[2])) do
  if on[name] ~= nil then on[name] = value == '1' end
end
local parts = {}
for i = 1, #ids do parts[i] = ids[i] .. ':' .. copies[i + 2] end
local scope = redis.sha1hex(table.concat(parts, ','))
local read_ret = a['read'] and on['ret']
local read_ans = read_ret and a['answer_cacheable'] and on['ans']
local ret, ans = '', ''
local function count(field, amount)
  redis.call('HINCRBY', KEYS[2], field, amount)
end
local function add(field, amount)
  if amount ~= '0.0' then redis.call('HINCRBYFLOAT', KEYS[2], field, amount) end
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
  redis.call('EXPIRE', KEYS[2], a['stats_ttl'])
  ret = entry(KEYS[5], '^r3 %x+ %x+ %S+\\n', 'ret')
  local stored_scope, ctx, ms = string.match(ret, '^r3 (%x+) (%x+) (%S+)\\n')
  if ret ~= '' and stored_scope ~= scope then
    redis.call('UNLINK', KEYS[5])  -- retrieved before a generation changed: stale
    ret = ''
  end
  if ret ~= '' then
    count('ret:hit', 1)
    add('ret:saved_ms', ms)
    if read_ans then
      -- Only an answer generated from this very context is this retrieval's answer.
      ans = entry(KEYS[6], '^a2 %x+ %S+ %S+ %S+\\n', 'ans')
      local generate_ms, tokens, cost = string.match(ans, '^a2 ' .. ctx .. ' (%S+) (%S+) (%S+)\\n')
      if generate_ms then
        count('ans:hit', 1)
        add('ans:saved_ms', generate_ms)
        add('ans:saved_tokens', tokens)
        add('ans:saved_cost', cost)
      else
        ans = ''
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
  emb = redis.call('GET', KEYS[3]) or ''
  if emb ~= '' then
    emb_status = 1
  elseif redis.call('SET', KEYS[4], a['token'], 'NX', 'EX', a['lock_ttl']) then
    emb_status = 2
  else
    emb_status = 3
  end
end
-- With warming on, the question counts toward its scope's popular ones.
local popular = a['popular']
if popular and popular ~= cjson.null then
  redis.call('ZINCRBY', KEYS[8], 1, popular['question'])
  redis.call('EXPIRE', KEYS[8], popular['ttl'])
end
-- A new question: the scope's earlier questions, for the sem layer, in this same trip.
-- The hash holds the questions of one scope digest; those of an older one are stale.
local sem = {}
if ret_missed and a['read'] and a['answer_cacheable'] and on['sem'] then
  if redis.call('HGET', KEYS[7], 'scope') == scope then sem = redis.call('HGETALL', KEYS[7]) end
end
return {'ok', scope, ret, ans, emb_status, emb, copies[2], sem}
"""

# Raise the scope's copies, never lowering one: a slow writer (or a resync) that read an
# older generation, catalog version or switches must not undo a newer change. Writers
# change the source (PostgreSQL, the catalog or switches hash) and then raise every
# scope's copy listed in `scopes`; a scope lists itself before it reads the sources, so
# either the writer reaches its copy, or the scope read the change itself.
# KEYS: the gen copy. ARGV[1], JSON: ttl, and any of gens ({id: generation}), catalog
# (version), switches ({version, values (JSON)}).
META_RAISE = """
local a = cjson.decode(ARGV[1])
local function raise(field, value)
  local held = tonumber(redis.call('HGET', KEYS[1], field) or '-1')
  if tonumber(value) > held then redis.call('HSET', KEYS[1], field, value) return true end
  return false
end
if a['gens'] then
  for id, generation in pairs(a['gens']) do raise(id, generation) end
end
if a['catalog'] then raise('catalog', a['catalog']) end
if a['switches'] then
  if raise('switches-version', a['switches']['version']) then
    redis.call('HSET', KEYS[1], 'switches', a['switches']['values'])
  end
end
-- The TTL is set once, when the copy is made, and never extended: every scope re-reads
-- its copies from the sources at least this often, whatever changes it may have missed.
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], a['ttl']) end
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
# a random older one makes room, so what one lookup reads stays bounded. The hash holds
# the questions of one scope digest (field "scope"): another starts it over.
# KEYS: the sem hash. ARGV: field, value, max entries, TTL, scope digest.
SEM_ADD = """
if redis.call('HGET', KEYS[1], 'scope') ~= ARGV[5] then
  redis.call('UNLINK', KEYS[1])
  redis.call('HSET', KEYS[1], 'scope', ARGV[5])
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local room = math.max(tonumber(ARGV[3]), 1) + 1  -- and the "scope" field
  while redis.call('HLEN', KEYS[1]) >= room do
    for _, field in ipairs(redis.call('HRANDFIELD', KEYS[1], 2)) do
      if field ~= 'scope' then redis.call('HDEL', KEYS[1], field) break end
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# Add an entry to a document's index (of the entry's scope: the same slot). The index
# lives as long as its longest-lived entry: its TTL is only ever raised.
# KEYS: the index. ARGV: the entry's key, its TTL.
INDEX_ADD = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# Drop from a document's index those of the sampled members whose entries are gone
# (expired, evicted, flushed), so that the index of a long-lived document does not grow with
# every entry that ever cited it. KEYS: the index, then the members sampled (its slot's).
INDEX_PRUNE = """
local gone = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then gone = gone + redis.call('SREM', KEYS[1], KEYS[i]) end
end
return gone
"""

# Extend a lock only if this holder still owns it (ragcache.leases).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
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
