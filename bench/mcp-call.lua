-- wrk script of the bench runners (bench/procs.ts `runWrk`): POST /mcp with an established MCP
-- session, by default `tools/call` of an echo tool.
--
-- Environment (set by bench/run.ts, bench/ws-throughput.ts, bench/auth.ts):
--   MCP_SESSION       Mcp-Session-Id to send (may be empty for servers that ignore it)
--   MCP_TOOL          downstream tool name, e.g. demo-echo
--   MCP_MESSAGE       the echo tool's `message` argument
--   MCP_SUFFIX        instead of the tools/call: the JSON-RPC request after `"id":N`, e.g.
--                     `,"method":"ping"}`
--   AUTH_HEADER       a header to send on every request (e.g. Authorization), with value
--   AUTH_VALUE        (both unset or empty: none)
--   MCP_MODERN        "1": MCP 2026-07-28 requests instead (no session; `_meta` with version,
--                     capabilities and client info; MCP-Protocol-Version, Mcp-Method, Mcp-Name)
--   MCP_CHECK_BODIES  "1": inspect every response body and count JSON-RPC errors / isError
--                     results (costs wrk CPU: Lua sees every response)
--
-- Every request gets its own JSON-RPC id (thread number * 2^32 + counter): the gateway refuses
-- a request whose id is already in flight in the same session.
-- done() prints one line `BENCH_JSON {...}` with the summary and latency percentiles (µs).

local threads = {}

function setup(thread)
  -- runs in the main Lua state; `tid` becomes a global of the thread's own state
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local prefix, suffix
local counter = 0
-- globals, read back with thread:get() in done()
rpc_errors = 0
bad_status = 0
checked = 0

if os.getenv("MCP_CHECK_BODIES") == "1" then
  -- defining response() makes wrk hand every response to Lua (costs wrk CPU): only when asked.
  -- Top level, so that wrk's main Lua state sees it too.
  function response(status, headers, body)
    checked = checked + 1
    if status < 200 or status > 299 then
      bad_status = bad_status + 1
    elseif body == nil or not string.find(body, '"result"', 1, true) or string.find(body, '"isError":true', 1, true) then
      rpc_errors = rpc_errors + 1
    end
  end
end

function init(args)
  local tool = os.getenv("MCP_TOOL") or "demo-echo"
  local message = os.getenv("MCP_MESSAGE") or "hello"
  local session = os.getenv("MCP_SESSION") or ""
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
  if session ~= "" then
    wrk.headers["Mcp-Session-Id"] = session
  end
  local auth = os.getenv("AUTH_HEADER") or ""
  if auth ~= "" then
    wrk.headers[auth] = os.getenv("AUTH_VALUE")
  end
  prefix = '{"jsonrpc":"2.0","id":'
  suffix = os.getenv("MCP_SUFFIX") or ""
  if os.getenv("MCP_MODERN") == "1" then
    wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
    wrk.headers["Mcp-Method"] = "tools/call"
    wrk.headers["Mcp-Name"] = tool
    suffix = ',"method":"tools/call","params":{"name":"' .. tool .. '","arguments":{"message":"' .. message .. '"},' ..
      '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},' ..
      '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"}}}}'
  elseif suffix == "" then
    suffix = ',"method":"tools/call","params":{"name":"' .. tool .. '","arguments":{"message":"' .. message .. '"}}}'
  end
  counter = (tid or 0) * 4294967296
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. string.format("%d", counter) .. suffix)
end

function done(summary, latency, requests)
  local rpc, bad, seen = 0, 0, 0
  for _, t in ipairs(threads) do
    rpc = rpc + (t:get("rpc_errors") or 0)
    bad = bad + (t:get("bad_status") or 0)
    seen = seen + (t:get("checked") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"checked":%d,"rpc_errors":%d,"bad_status":%d,' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    seen, rpc, bad,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
