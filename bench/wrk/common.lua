-- Shared by the scenario scripts: arguments, unique keys, JSON headers.
-- Each wrk thread runs its own Lua state, so counters are per thread.
users = 100000
counter = 0
prefix = ""

function setup_thread(args)
  users = tonumber(args[1] or users)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
  prefix = string.format("wrk-%d-%d", os.time(), math.random(1, 2147483647))
end

function post(path, body)
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = prefix .. "-" .. counter
  return wrk.format("POST", path, headers, body)
end

function other_user(uid)
  local v = math.random(1, users - 1)
  if v >= uid then v = v + 1 end
  return v
end
