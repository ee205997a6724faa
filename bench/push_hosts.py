#!/usr/bin/env python3
"""Pushes bench/gen_hosts.py output to a running server's push providers, BATCH lines per
request, taking the three tools' files in turn (so shared machines arrive from either side
first), and prints the elapsed seconds and the summed counts as JSON.

Usage: push_hosts.py BASE_URL DIR [BATCH]
"""
import json
import sys
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


def main():
    base, folder = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    streams = [(t, batches(f"{folder}/{t}.jsonl", size)) for t in TOOLS]
    totals = {"received": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "requests": 0}
    start = time.monotonic()
    while streams:
        for entry in list(streams):
            tool, stream = entry
            body = next(stream, None)
            if body is None:
                streams.remove(entry)
                continue
            request = urllib.request.Request(
                f"{base}/ingest/{tool}", data=body.encode(), method="POST",
                headers={"Content-Type": "application/x-ndjson"})
            with urllib.request.urlopen(request) as response:
                answer = json.load(response)
            totals["requests"] += 1
            for key in ("received", "inserted", "updated", "unchanged", "rejected"):
                totals[key] += answer[key]
    totals["seconds"] = time.monotonic() - start
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
