package.path = package.path .. ";bench/wrk/?.lua"
require "common"
init = setup_thread
request = function()
  return wrk.format("GET", string.format("/v1/users/%d/transactions?limit=20", math.random(1, users)))
end
