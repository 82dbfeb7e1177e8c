-- POSTs one row per request from a data file, round-robin; each line is "<Authorization header>\t<JSON body>".
-- Usage: wrk -s post_rows.lua <url> -- <path> <data file>
local rows = {}
local next_row = 0
local path = "/"

init = function(args)
  path = args[1]
  for line in io.lines(args[2]) do
    local auth, body = line:match("^([^\t]*)\t(.*)$")
    if auth then rows[#rows + 1] = {auth, body} end
  end
  -- Threads start at different rows so they don't hammer the same product and user in lockstep.
  next_row = math.random(#rows)
end

request = function()
  next_row = next_row % #rows + 1
  local row = rows[next_row]
  return wrk.format("POST", path, {["Authorization"] = row[1], ["Content-Type"] = "application/json"}, row[2])
end
