-- wrk script for `make bench`: POST /customers with a unique email per
-- request, as the app's ingest load.  The local part starts with random
-- hex digits, so the emails spread over the unique email index as real
-- ones do (make bench, "history"); the thread's prefix and a counter keep
-- each one unique.
local threads = 0

function setup(thread)
  -- Runs in the main state: give each thread its own number.
  thread:set("thread_no", threads)
  threads = threads + 1
end

function init(args)
  -- Runs in the thread's state, where thread_no was set by setup().
  prefix = "wrk-" .. tostring(os.time()) .. "-" .. tostring(thread_no)
  math.randomseed(os.time() * 64 + thread_no)
  counter = 0
end

request = function()
  counter = counter + 1
  local body = '{"email":"' .. string.format("%08x", math.random(0, 2147483647)) ..
      '-' .. prefix .. '-' .. counter ..
      '@example.com","name":"Load"}'
  return wrk.format("POST", "/customers",
      {["Content-Type"] = "application/json"}, body)
end
