-- wrk script for `make bench`: POST /customers with a unique email per
-- request (a per-thread prefix and a counter), as the app's ingest load.
local threads = 0

function setup(thread)
  -- Runs in the main state: give each thread its own number.
  thread:set("thread_no", threads)
  threads = threads + 1
end

function init(args)
  -- Runs in the thread's state, where thread_no was set by setup().
  prefix = "wrk-" .. tostring(os.time()) .. "-" .. tostring(thread_no)
  counter = 0
end

request = function()
  counter = counter + 1
  local body = '{"email":"' .. prefix .. '-' .. counter ..
      '@example.com","name":"Load"}'
  return wrk.format("POST", "/customers",
      {["Content-Type"] = "application/json"}, body)
end
