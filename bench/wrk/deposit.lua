package.path = package.path .. ";bench/wrk/?.lua"
require "common"
init = setup_thread
request = function()
  return post("/v1/deposits", string.format('{"user_id":%d,"amount":"1.00"}', math.random(1, users)))
end
