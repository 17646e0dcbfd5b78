-- Batches of 100 movements: 50 deposits and 50 transfers between random users.
package.path = package.path .. ";bench/wrk/?.lua"
require "common"
init = setup_thread
request = function()
  local lines = {}
  for i = 1, 50 do
    local uid = math.random(1, users)
    lines[#lines + 1] = string.format('{"op":"deposit","user_id":%d,"amount":"1.00"}', uid)
    lines[#lines + 1] = string.format(
      '{"op":"transfer","from_user_id":%d,"to_user_id":%d,"amount":"0.50"}', uid, other_user(uid))
  end
  return post("/v1/batches", '{"operations":[' .. table.concat(lines, ",") .. ']}')
end
