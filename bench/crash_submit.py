#!/usr/bin/env python3
"""Load for the /submit scenario of crash.sh: THREADS threads post events with unique ids
(`metadata.id` = RUN-THREAD-N) to http://127.0.0.1:PORT/submit for SECONDS, each on its own
keep-alive connection. A 204 is an acknowledgement: its id goes to ACKED (one per line). A
request that gets no answer (the server was killed, or is not back yet) is unacknowledged and
never sent again. Any other status is printed and counted as unexpected.

Usage: crash_submit.py PORT SECONDS RUN ACKED [THREADS]
Prints: acknowledged unanswered unexpected
"""
import http.client, json, sys, threading, time

def main():
    port, seconds, run, acked_path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 32
    deadline = time.monotonic() + seconds
    results = [([], 0, 0) for _ in range(threads)]

    def worker(t):
        acked, unanswered, unexpected = [], 0, 0
        conn, n = None, 0
        while time.monotonic() < deadline:
            n += 1
            ident = f"{run}-{t}-{n}"
            body = json.dumps({"ip_address": "192.168.1.1", "user_agent": "crash",
                               "referring_url": "https://example.com", "advertiser_id": "12345",
                               "metadata": {"id": ident}})
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/submit", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 204:
                    acked.append(ident)
                else:
                    unexpected += 1
                    print(f"{ident}: status {resp.status}", file=sys.stderr)
            except (OSError, http.client.HTTPException):
                unanswered += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        results[t] = (acked, unanswered, unexpected)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    with open(acked_path, "w") as f:
        for acked, _, _ in results:
            for ident in acked:
                f.write(ident + "\n")
    print(sum(len(r[0]) for r in results), sum(r[1] for r in results), sum(r[2] for r in results))

main()
