-- wrk script for `make bench`: POST /customers with a unique email per
-- request (per thread prefix + counter), as the app's ingest load.
local counter = 0
local tid = 0

function setup(thread)
  thread:set("tid", tid)
  tid = tid + 1
end

function init(args)
  prefix = "wrk-" .. tostring(os.time()) .. "-" .. tostring(tid)
end

request = function()
  counter = counter + 1
  local body = '{"email":"' .. prefix .. '-' .. counter ..
      '@example.com","name":"Load"}'
  return wrk.format("POST", "/customers",
      {["Content-Type"] = "application/json"}, body)
end
