-- Every request touches user 1: deposits to it and transfers from it, alternating.
package.path = package.path .. ";bench/wrk/?.lua"
require "common"
init = setup_thread
request = function()
  if counter % 2 == 0 then
    return post("/v1/deposits", '{"user_id":1,"amount":"1.00"}')
  end
  return post("/v1/transfers",
    string.format('{"from_user_id":1,"to_user_id":%d,"amount":"1.00"}', other_user(1)))
end
