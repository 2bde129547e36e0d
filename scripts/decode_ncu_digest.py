#!/usr/bin/env python3
"""Digest of scripts/decode_ncu.sh's CSV: one line per kernel name (calls, us per call, us a
step, DRAM MB per call, GB/s and % of copy bandwidth while it runs), the step's sum, and the sum
of each kernel's bytes at copy bandwidth (what the step would cost with every kernel at copy speed
and no gaps)."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import defaultdict


def read_rows(path: str) -> list[dict]:
    text = open(path).read()
    start = text.find('"ID"')
    if start < 0:
        raise SystemExit(f"{path}: no ncu CSV header (\"ID\",...) found; see the .err file beside it")
    return list(csv.DictReader(io.StringIO(text[start:])))


def to_number(value: str) -> float:
    return float(value.replace(",", "")) if value not in ("", "n/a") else 0.0


def kernels(rows: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """(id, name) -> metric -> value in base units (ns, bytes, %)."""
    scale = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6,
             "Gbyte": 1e9}
    found: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for row in rows:
        unit = row.get("Metric Unit", "")
        found[(row["ID"], row["Kernel Name"].split("(")[0])][row["Metric Name"]] = (
            to_number(row["Metric Value"]) * scale.get(unit, 1.0))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv")
    parser.add_argument("--copy-gbps", type=float, default=4054.0, help="measured copy bandwidth (autotuner doctor)")
    args = parser.parse_args()
    per_kernel = kernels(read_rows(args.csv))
    by_name: dict[str, list[dict[str, float]]] = defaultdict(list)
    for (_, name), metrics in per_kernel.items():  # one kernel serves several slots (O and down): split by bytes
        mb = (metrics.get("dram__bytes_read.sum", 0) + metrics.get("dram__bytes_write.sum", 0)) / 1e6
        by_name[f"{name[:34]} ~{mb:.0f}MB" if mb >= 1 else name[:44]].append(metrics)
    total_ns = total_floor_ns = 0.0
    print(f"{'kernel':<44} {'calls':>5} {'us/call':>8} {'us/step':>8} {'MB/call':>8} {'GB/s':>7} {'%copy':>6} "
          f"{'regs':>4} {'grid':>6} {'occ%':>5}")
    for name, calls in sorted(by_name.items(), key=lambda kv: -sum(m["gpu__time_duration.sum"] for m in kv[1])):
        ns = sum(m["gpu__time_duration.sum"] for m in calls)
        moved = sum(m.get("dram__bytes_read.sum", 0) + m.get("dram__bytes_write.sum", 0) for m in calls)
        total_ns += ns
        total_floor_ns += moved / args.copy_gbps
        gbps = moved / ns if ns else 0.0
        first = calls[0]
        print(f"{name[:44]:<44} {len(calls):>5} {ns / len(calls) / 1e3:>8.2f} {ns / 1e3:>8.1f} "
              f"{moved / len(calls) / 1e6:>8.2f} {gbps:>7.0f} {100 * gbps / args.copy_gbps:>6.1f} "
              f"{first.get('launch__registers_per_thread', 0):>4.0f} {first.get('launch__grid_size', 0):>6.0f} "
              f"{first.get('sm__warps_active.avg.pct_of_peak_sustained_active', 0):>5.1f}")
    print(f"step: {len(per_kernel)} kernels, {total_ns / 1e3:.1f} us of kernel time run one at a time; "
          f"their DRAM bytes at {args.copy_gbps:,.0f} GB/s: {total_floor_ns / 1e3:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
