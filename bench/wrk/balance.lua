package.path = package.path .. ";bench/wrk/?.lua"
require "common"
init = setup_thread
request = function()
  return wrk.format("GET", string.format("/v1/users/%d/balance", math.random(1, users)))
end
