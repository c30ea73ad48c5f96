-- POST /upload with one image as multipart/form-data, field "file".
--   wrk ... -s post.lua http://127.0.0.1:PORT/upload -- IMAGEFILE
-- The body is built once per thread with a fixed boundary; every request sends
-- the same bytes (each still becomes its own row with its own token and key).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local BOUNDARY = "----imgstorebench0123456789abcdef"

function init(args)
   non2xx = 0
   counting = true  -- answers are small JSON: the response() hook is cheap
   local f = assert(io.open(args[1], "rb"))
   local data = f:read("*a")
   f:close()
   local body = "--" .. BOUNDARY .. "\r\n" ..
      'Content-Disposition: form-data; name="file"; filename="bench.jpg"\r\n' ..
      "Content-Type: image/jpeg\r\n\r\n" ..
      data .. "\r\n--" .. BOUNDARY .. "--\r\n"
   req = wrk.format("POST", nil,
                    {["Content-Type"] = "multipart/form-data; boundary=" .. BOUNDARY}, body)
end

function request()
   return req
end
