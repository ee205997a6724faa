#!/usr/bin/env python3
"""Inputs for the file-import scenario of crash.sh.

Usage: crash_products.py A.csv B.csv EXPECT_A.csv EXPECT_B.csv
Writes B: A's rows with every name moved one row down (the same SKUs with other names, so
importing A then B updates products and moves product_counts) and three rows without a SKU in
the middle (rejected). EXPECT_X: `sku,name` of each SKU's last row in X, what products must
hold after X was imported last.
"""
import csv, sys

def main():
    a_path, b_path, expect_a, expect_b = sys.argv[1:5]
    with open(a_path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ni, si = header.index("name"), header.index("sku")
    names = [r[ni] for r in body]
    shifted = names[-1:] + names[:-1]
    b_body = []
    for i, r in enumerate(body):
        r = list(r)
        r[ni] = shifted[i]
        b_body.append(r)
        if i == len(body) // 2:
            for k in range(3):
                bad = [""] * len(header)
                bad[ni] = f"no sku {k}"
                b_body.append(bad)
    with open(b_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(b_body)
    for body_rows, path in ((body, expect_a), (b_body, expect_b)):
        last = {}
        for r in body_rows:
            if r[si]:
                last[r[si]] = r[ni]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            for sku, name in last.items():
                w.writerow([sku, name])
        print(f"{path}: {len(last)} SKUs")

main()
