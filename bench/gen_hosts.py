#!/usr/bin/env python3
"""Host observations for bench/hosts.sh: OBSERVATIONS reports from three tools, half of them of
machines that another tool reports too, each tool spelling identifiers its own way.

Writes, into DIR:
  tool-a.jsonl, tool-b.jsonl, tool-c.jsonl   one JSON object per line, as each tool pushes them
  observations.csv                          the same reports flattened, for the psql baseline
  expected.txt                              machines, observations (the numbers a run must reach)

Machines come in two halves by observation count: shared machines, each reported by two tools
(the pair rotates over a-b, b-c, c-a), and machines only one tool reports. Tool a knows the
cloud instance id and an upper-case MAC, tool b the instance id and a dash-separated MAC with a
short host name, tool c (an on-premises scanner) only the MAC and the FQDN, so shared machines
meet by instance id or by MAC. Deterministic: the same arguments give the same files.

Usage: gen_hosts.py DIR [OBSERVATIONS]   (default 100000)
"""
import csv
import json
import os
import sys

TOOLS = ["tool-a", "tool-b", "tool-c"]
PAIRS = [(0, 1), (1, 2), (2, 0)]


def machine(n):
    mac = "0a" + "".join(f"{(n >> shift) & 0xff:02x}" for shift in (32, 24, 16, 8, 0))
    return {
        "name": f"host-{n:07d}",
        "fqdn": f"host-{n:07d}.corp.example.com",
        "instance": f"i-{n:017x}",
        "mac": ":".join(mac[i : i + 2] for i in range(0, 12, 2)),
        "private": f"10.{(n >> 16) & 0xff}.{(n >> 8) & 0xff}.{n & 0xff}",
        "public": f"203.0.{(n >> 8) & 0xff}.{n & 0xff}",
    }


def report(tool, n, m):
    seen = f"2026-11-{1 + n % 20:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
    if tool == 0:
        return {
            "id": f"a-{n}",
            "hostname": m["fqdn"],
            "instance": m["instance"],
            "macs": [m["mac"].upper()],
            "ips": [m["private"], m["public"]],
            "os": "Amazon Linux 2",
            "last_seen": seen,
        }
    if tool == 1:
        return {
            "id": f"b-{n}",
            "hostname": m["name"].upper(),
            "instance": m["instance"].upper(),
            "macs": [m["mac"].replace(":", "-")],
            "ips": [m["private"]],
            "os": "Linux",
            "last_seen": seen,
        }
    return {
        "id": f"c-{n}",
        "fqdn": m["fqdn"],
        "macs": [m["mac"]],
        "ips": [m["private"]],
        "last_seen": seen,
    }


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    shared = total // 4  # shared machines: two reports each, half of all reports
    single = total - 2 * shared
    os.makedirs(out, exist_ok=True)
    files = [open(os.path.join(out, f"{t}.jsonl"), "w") for t in TOOLS]
    rows = csv.writer(open(os.path.join(out, "observations.csv"), "w", newline=""))
    rows.writerow(["provider", "external_id", "hostname", "fqdn", "os", "cloud_instance_id", "macs", "private_ips", "last_seen"])

    def emit(tool, n):
        r = report(tool, n, machine(n))
        files[tool].write(json.dumps(r) + "\n")
        rows.writerow([TOOLS[tool], r["id"], r.get("hostname"), r.get("fqdn"), r.get("os"), r.get("instance"),
                       json.dumps(r["macs"]), json.dumps(r["ips"]), r["last_seen"]])

    for n in range(shared):
        a, b = PAIRS[n % 3]
        emit(a, n)
        emit(b, n)
    for k in range(single):
        emit(k % 3, shared + k)
    for f in files:
        f.close()
    with open(os.path.join(out, "expected.txt"), "w") as f:
        f.write(f"{shared + single} {total}\n")


if __name__ == "__main__":
    main()
