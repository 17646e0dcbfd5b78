-- Reserve a fresh order for a random user, every request.
package.path = package.path .. ";bench/wrk/?.lua"
require "common"
local next_order = 0
init = function(args)
  setup_thread(args)
  next_order = math.random(1, 2000000000) * 1000000
end
request = function()
  next_order = next_order + 1
  return post("/v1/reservations", string.format(
    '{"user_id":%d,"service_id":7,"order_id":%d,"amount":"0.01"}', math.random(1, users), next_order))
end
