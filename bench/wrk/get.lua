-- GETs spread over many stored images.
--   wrk ... -s get.lua http://127.0.0.1:PORT -- HASHFILE PREFIX [lua-count] [random]
-- HASHFILE holds one name per line (an image hash); each request is
-- PREFIX .. name ("/image/" for the module, "/static/" for the static ceiling).
-- Answers that are not 2xx are counted by wrk itself (status > 399) unless the
-- third argument is "lua-count": then by the response() hook, at the price of wrk
-- copying every body into Lua (see common.lua).
-- Each thread walks the list round-robin from its own starting point, so the
-- threads do not ask for the same row at the same moment. With "random", each
-- request picks a name at random instead: against a cache that holds only part of
-- the names, round-robin would always ask for the one evicted longest ago (every
-- GET a miss); random picks hit about as often as the cache holds names.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
   non2xx = 0
   counting, random_pick = false, false
   for i = 3, #args do
      counting = counting or args[i] == "lua-count"
      random_pick = random_pick or args[i] == "random"
   end
   if not counting then
      response = nil
   end
   local file, prefix = args[1], args[2]
   reqs = {}
   for line in io.lines(file) do
      if #line > 0 then
         -- Prebuilt once: building a request per call costs wrk CPU we want to spend on the server.
         reqs[#reqs + 1] = wrk.format("GET", prefix .. line)
      end
   end
   assert(#reqs > 0, "no names in " .. file)
   -- Offset each thread by a prime stride so threads start in different places.
   pos = (thread_id * 7919) % #reqs
   math.randomseed(20240601 + thread_id)
end

function request()
   if random_pick then
      return reqs[math.random(#reqs)]
   end
   pos = pos % #reqs + 1
   return reqs[pos]
end
