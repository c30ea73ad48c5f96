-- Shared by get.lua and post.lua (loaded with dofile from the same directory).
-- Each thread counts the answers that are not 2xx in the response() hook; done()
-- adds the counts of all threads and prints one machine-readable line that
-- bench/bench.py parses:  BENCH {json}
-- A script whose answers are large (get.lua) may drop the hook in init()
-- (response = nil, counting = false): wrk then neither keeps the body nor copies it
-- into Lua, which for 1 MB answers costs wrk more CPU than the server spends, and
-- the count falls back to wrk's own (status > 399).

local threads = {}
local next_id = 0

-- Runs in the setup environment, once per thread, before the threads start.
function setup(thread)
   thread:set("thread_id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

-- Runs in each thread's own environment, once per answer.
function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

-- Runs in the setup environment after the run; latency values are microseconds.
function done(summary, latency, requests)
   local e = summary.errors
   local bad = 0
   if threads[1]:get("counting") then
      for _, t in ipairs(threads) do
         bad = bad + t:get("non2xx")
      end
   else
      bad = e.status
   end
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, ' ..
      '"err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, ' ..
      '"err_timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, bad,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
