#!/usr/bin/env python3
"""Pushes bench/gen_hosts.py output to a running server's push providers, BATCH lines per
request, and prints the elapsed seconds and the summed counts as JSON. By default one client
takes the three tools' files in turn (so shared machines arrive from either side first); with
PARALLEL=1 each tool pushes its own file from its own thread, as three independent tools would.

Usage: push_hosts.py BASE_URL DIR [BATCH]
"""
import json
import os
import sys
import threading
import time
import urllib.request

TOOLS = ["tool-a", "tool-b", "tool-c"]


def batches(path, size):
    with open(path) as f:
        lines = []
        for line in f:
            lines.append(line)
            if len(lines) == size:
                yield "".join(lines)
                lines = []
        if lines:
            yield "".join(lines)


def push(base, tool, body, totals, lock):
    request = urllib.request.Request(
        f"{base}/ingest/{tool}", data=body.encode(), method="POST",
        headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(request) as response:
        answer = json.load(response)
    with lock:
        totals["requests"] += 1
        for key in ("received", "inserted", "updated", "unchanged", "superseded", "rejected"):
            totals[key] += answer[key]


def main():
    base, folder = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    parallel = os.environ.get("PARALLEL") == "1"
    streams = [(t, batches(f"{folder}/{t}.jsonl", size)) for t in TOOLS]
    totals = {"received": 0, "inserted": 0, "updated": 0, "unchanged": 0, "superseded": 0, "rejected": 0,
              "requests": 0}
    lock = threading.Lock()
    start = time.monotonic()
    if parallel:
        def run(tool, stream):
            for body in stream:
                push(base, tool, body, totals, lock)
        threads = [threading.Thread(target=run, args=entry) for entry in streams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        while streams:
            for entry in list(streams):
                tool, stream = entry
                body = next(stream, None)
                if body is None:
                    streams.remove(entry)
                    continue
                push(base, tool, body, totals, lock)
    totals["seconds"] = time.monotonic() - start
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
