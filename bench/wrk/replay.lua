-- Replays pre-generated, pre-signed requests; counts status codes per thread.
-- Usage: wrk ... -s replay.lua <url> -- <requests file> <threads> <signature header name>
-- Each line of the file is "<signature>\t<body>"; line i goes to thread (i mod threads), which
-- sends its lines in order (wrapping around only if it runs out). done() prints one JSON line:
-- requests, duration, latency percentiles (us), socket errors, status counts, and how many
-- requests each thread generated (so the harness knows exactly which bodies were sent).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads, header = args[1], tonumber(args[2]), args[3]
  reqs = {}
  statuses = {}
  sent = 0
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      local headers = {}
      headers["Content-Type"] = "application/json"
      headers[header] = line:sub(1, tab - 1)
      reqs[#reqs + 1] = wrk.format("POST", nil, headers, line:sub(tab + 1))
    end
    i = i + 1
  end
  available = #reqs
end

function request()
  sent = sent + 1
  return reqs[((sent - 1) % #reqs) + 1]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  local parts = {}
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    for k, v in pairs(st) do total[k] = (total[k] or 0) + v end
    parts[#parts + 1] = string.format('{"id": %d, "sent": %d, "available": %d}',
      t:get("id"), t:get("sent"), t:get("available"))
  end
  local codes = {}
  for k, v in pairs(total) do codes[#codes + 1] = string.format('"%s": %d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"statuses": {%s}, "threads": [%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(codes, ", "), table.concat(parts, ", ")))
end
