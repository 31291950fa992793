-- POST /auth/register with a new address every request (one counter per
-- wrk thread, the thread's number and the start time in the address).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", string.format("%d-%d", os.time(), threads))
end
counter = 0
function request()
  counter = counter + 1
  local body = string.format('{"email":"r%s-%d@example.com","password":"violet-anchor-tundra-41"}', tid, counter)
  return wrk.format("POST", "/api/v1/auth/register", { ["Content-Type"] = "application/json" }, body)
end
