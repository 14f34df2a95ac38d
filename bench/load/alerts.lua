-- wrk: POST /v1/alerts from many registered people, each request a fresh alert.
-- TOKENS names a file of bearer tokens, one a line (bench/load.py writes it); RUN tags the ids.

local threads = {}
local counter = 0
-- Globals, so that done() can read each thread's counts.
created, refused = 0, 0
local tokens = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   for line in io.lines(os.getenv("TOKENS")) do
      tokens[#tokens + 1] = line
   end
   nthreads = tonumber(os.getenv("THREADS") or "1")
   math.randomseed(1000 + id)
end

-- Presses spread over the metro areas where most consulates are.
local metros = {
   {34.05, -118.24}, {41.88, -87.63}, {29.76, -95.37}, {33.45, -112.07},
   {32.72, -117.16}, {29.42, -98.49}, {40.71, -74.01}, {37.77, -122.42},
}

function request()
   counter = counter + 1
   -- setup() ran in the main state: a thread knows the thread count only from THREADS.
   local token = tokens[((counter - 1) * nthreads + id) % #tokens + 1]
   local metro = metros[counter % #metros + 1]
   local body = string.format(
      '{"client_alert_id":"load-%s-%d-%d","location":{"lat":%.5f,"lon":%.5f,"accuracy_m":20}}',
      os.getenv("RUN") or "0", id, counter,
      metro[1] + (math.random() - 0.5) * 0.4, metro[2] + (math.random() - 0.5) * 0.4)
   return wrk.format("POST", "/v1/alerts", {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
   }, body)
end

-- RATE (alerts/s over all CONNECTIONS) paces each connection to one request every
-- CONNECTIONS / RATE seconds, for latency below saturation; unset, wrk sends as fast as answered.
if os.getenv("RATE") then
   local pause = tonumber(os.getenv("CONNECTIONS")) * 1000 / tonumber(os.getenv("RATE"))
   function delay()
      return pause
   end
end

function response(status, headers, body)
   if status == 201 then
      created = created + 1
   else
      refused = refused + 1
   end
end

function done(summary, latency, requests)
   local c, r = 0, 0
   for _, thread in ipairs(threads) do
      c = c + thread:get("created")
      r = r + thread:get("refused")
   end
   io.write(string.format("created %d\nrefused %d\n", c, r))
   io.write(string.format("latency_ms p50 %.2f p99 %.2f max %.2f\n",
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
