-- The framework's floor: GET /health/live (Litestar with our middleware, no work).
package.path = package.path .. ";bench/wrk/?.lua"
require "common"
init = function(args)
  setup_thread(args)
end
request = function()
  return wrk.format("GET", "/health/live")
end
