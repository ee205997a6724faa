-- wrk script for bench/soak.sh: POST /submit with the README's example body, pausing between
-- requests so the rate is about connections × 1000 / SUBMIT_DELAY_MS per second (wrk's delay()
-- is in whole milliseconds).
local delay_ms = tonumber(os.getenv("SUBMIT_DELAY_MS") or "4")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"ip_address":"192.168.1.1","user_agent":"Mozilla/5.0","referring_url":"https://example.com","advertiser_id":"12345","metadata":{"key":"value"}}'

function delay()
  return delay_ms
end
