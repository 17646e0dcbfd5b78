-- Reserve a fresh order; once its 201 arrives, recognize it (a queue per thread).
package.path = package.path .. ";bench/wrk/?.lua"
require "common"
local queue = {}
local next_order = 0
init = function(args)
  setup_thread(args)
  next_order = math.random(1, 2000000000) * 1000000
end
request = function()
  local n = #queue
  if n > 0 then
    local order = table.remove(queue, n)
    return post(string.format("/v1/reservations/%s/recognize", order[1]),
      string.format('{"user_id":%s,"service_id":7,"amount":"1.00"}', order[2]))
  end
  next_order = next_order + 1
  return post("/v1/reservations", string.format(
    '{"user_id":%d,"service_id":7,"order_id":%d,"amount":"1.00"}', math.random(1, users), next_order))
end
response = function(status, headers, body)
  if status == 201 then
    local order = string.match(body, '"order_id":(%d+)')
    local uid = string.match(body, '"user_id":(%d+)')
    if order then table.insert(queue, {order, uid}) end
  end
end
