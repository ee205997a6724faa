-- wrk script for bench/soak.sh: GraphQL queries (the newest events, the latest runs, host and
-- record pages) in turn, 20 ms apart per connection (4 connections: about 200 queries/s).
-- Counts responses that carry GraphQL errors, printed as "graphql errors: N".
local queries = {
  '{"query":"{ events(first: 20) { nodes { id advertiserId receivedAt } pageInfo { hasNextPage } } }"}',
  '{"query":"{ ingestRuns(first: 10) { nodes { id provider status fetched inserted } } }"}',
  '{"query":"{ hosts(first: 20) { nodes { id hostname } } }"}',
  '{"query":"{ records(dataset: \\"items\\", first: 50) { nodes { key } } }"}',
}
local n = 0
errors = 0 -- global: done() reads each thread's through thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, queries[(n % #queries) + 1])
end

function delay()
  return 20
end

function response(status, headers, body)
  if string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("errors")
  end
  io.write("graphql errors: " .. total .. "\n")
end
