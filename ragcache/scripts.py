"""Server-side scripts: each does in one round trip what would otherwise take several."""

from __future__ import annotations

# The whole read side of a cached answer in one call: the generations of the scope,
# the retrieval entry they lead to, the answer that entry's context leads to, and the
# statistics of what was found. When the retrieval misses, the question's embedding
# (or the lock to compute it) comes along, so a complete miss saves a round trip too.
#
# ARGV: prefix, stats key, stats TTL, read ret (1/0), read ans (1/0), ret key suffix,
#       ans key stem, emb key ("" to skip), emb lock token, emb lock TTL,
#       collection ids (sorted)...
# Returns {"gen-missing"} when a generation copy is missing, else {"ok", scope digest,
# ret value or "", ans value or "", emb status (0 not asked, 1 value, 2 locked for this
# caller, 3 locked by another), emb value or ""}.
LOOKUP = """
local prefix = ARGV[1]
local stats = ARGV[2]
local ids = {}
for i = 11, #ARGV do ids[#ids + 1] = ARGV[i] end
local parts = {}
if #ids > 0 then
  local gens = redis.call('HMGET', prefix .. 'gen', unpack(ids))
  for i = 1, #ids do
    if not gens[i] then return {'gen-missing'} end
    parts[i] = ids[i] .. ':' .. gens[i]
  end
end
local scope = redis.sha1hex(table.concat(parts, ','))
local ret, ans = '', ''
local function count(field, amount)
  redis.call('HINCRBYFLOAT', stats, field, tonumber(amount) or 0)
end
if ARGV[4] == '1' then
  redis.call('EXPIRE', stats, ARGV[3])
  ret = redis.call('GET', prefix .. 'ret:' .. scope .. ARGV[6]) or ''
  if ret ~= '' then
    local entry = cjson.decode(ret)
    count('ret:hit', 1)
    count('ret:saved_ms', entry['ms'])
    if ARGV[5] == '1' then
      ans = redis.call('GET', prefix .. 'ans:' .. ARGV[7] .. entry['ctx']) or ''
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
if ret == '' and ARGV[8] ~= '' then
  emb = redis.call('GET', ARGV[8]) or ''
  if emb ~= '' then
    emb_status = 1
  elseif redis.call('SET', prefix .. 'lock:' .. ARGV[8], ARGV[9], 'NX', 'EX', ARGV[10]) then
    emb_status = 2
  else
    emb_status = 3
  end
end
return {'ok', scope, ret, ans, emb_status, emb}
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

# Delete every entry that cited a document, and the index itself.
INVALIDATE_DOCUMENT = """
local keys = redis.call('SMEMBERS', KEYS[1])
for i = 1, #keys, 500 do
  redis.call('UNLINK', unpack(keys, i, math.min(i + 499, #keys)))
end
redis.call('UNLINK', KEYS[1])
return #keys
"""
