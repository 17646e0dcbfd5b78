package.path = package.path .. ";bench/wrk/?.lua"
require "common"
init = setup_thread
request = function()
  local from = math.random(1, users)
  return post("/v1/transfers",
    string.format('{"from_user_id":%d,"to_user_id":%d,"amount":"1.00"}', from, other_user(from)))
end
