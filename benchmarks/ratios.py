#!/usr/bin/env python3
"""Print memo's performance targets as ratios, round by round, from results.txt.

run.sh runs the benchmarks in rounds, each running every contender once. On a
shared machine whose speed drifts, a ratio of two contenders from the same
round is steadier than a ratio of their medians over the whole run, so each
target is computed per round, and the median of those ratios is compared with
the target.

    python3 ratios.py [results.txt]
"""

import re
import statistics
import sys

# (what, numerator, denominator, bound, kind): the ratio numerator/denominator
# of ns/op must be at most bound ("max") or at least bound ("min").
TARGETS = [
    ("hit: Memoize / golang-lru", "Hit/memo-Memoize", "Hit/golang-lru", 0.5, "max"),
    ("hit: Memoize / otter", "Hit/memo-Memoize", "Hit/otter", 0.8, "max"),
    ("hit: Memoize / mutex-map", "Hit/memo-Memoize", "Hit/mutex-map", 2.5, "max"),
    ("hit: Memoize / Python lru_cache", "Hit/memo-Memoize", "Hit/python-lru_cache", 0.3, "max"),
    ("hit: Memoize / LRU core", "Hit/memo-Memoize", "Hit/memo-LRU", 1.15, "max"),
    ("get-or-compute: Memoize / golang-lru", "GetOrCompute/memo-Memoize", "GetOrCompute/golang-lru", 0.7, "max"),
    ("get-or-compute: Memoize / otter", "GetOrCompute/memo-Memoize", "GetOrCompute/otter", 1.0, "max"),
    ("parallel hits, throughput: Shards(16) / golang-lru",
     "HitParallel/golang-lru", "HitParallel/memo-Memoize-Shards16", 3.0, "min"),
    ("parallel hit: Memoize / otter", "HitParallel/memo-Memoize", "HitParallel/otter", 1.0, "max"),
    ("parallel hit, 8 per core: Memoize / otter", "HitParallelMany/memo-Memoize", "HitParallelMany/otter", 0.8, "max"),
    ("parallel hit, 64K keys: Memoize / otter", "HitParallelLarge/memo-Memoize", "HitParallelLarge/otter", 1.0, "max"),
    ("parallel hit, 64K, 8 per core: Memoize / otter",
     "HitParallelManyLarge/memo-Memoize", "HitParallelManyLarge/otter", 0.8, "max"),
    ("hit: WTinyLFU / Memoize", "Hit/memo-WTinyLFU", "Hit/memo-Memoize", 1.25, "max"),
    ("hit: EstimateSizes / Memoize", "Hit/memo-EstimateSizes", "Hit/memo-Memoize", 1.25, "max"),
    ("hit, 64K keys: WTinyLFU / Memoize", "HitLarge/memo-WTinyLFU", "HitLarge/memo-Memoize", 1.25, "max"),
    ("hit, 64K keys: EstimateSizes / Memoize", "HitLarge/memo-EstimateSizes", "HitLarge/memo-Memoize", 1.25, "max"),
    ("parallel hit: WTinyLFU / Memoize", "HitParallel/memo-WTinyLFU", "HitParallel/memo-Memoize", 1.25, "max"),
    ("parallel hit: EstimateSizes / Memoize",
     "HitParallel/memo-EstimateSizes", "HitParallel/memo-Memoize", 1.25, "max"),
]

LINE = re.compile(r"^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$")


def rounds(path):
    """Return one dict per round: benchmark name -> {unit: value}.

    A round ends where a benchmark seen in it appears again.
    """
    out, cur = [], {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            name, rest = m.groups()
            fields = rest.split()
            metrics = {unit: float(v) for v, unit in zip(fields[::2], fields[1::2])}
            if name in cur:
                out.append(cur)
                cur = {}
            cur[name] = metrics
    if cur:
        out.append(cur)
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "results.txt"
    rs = rounds(path)
    print(f"targets, as ratios within each of the {len(rs)} rounds of {path}")
    print(f"{'target':52} {'bound':>7} {'median':>7}  met  per round")
    for what, num, den, bound, kind in TARGETS:
        ratios = [r[num]["ns/op"] / r[den]["ns/op"] for r in rs if num in r and den in r]
        if not ratios:
            print(f"{what:52} {'':>7} {'-':>7}  -    (not in {path})")
            continue
        med = statistics.median(ratios)
        met = med <= bound if kind == "max" else med >= bound
        sign = "<=" if kind == "max" else ">="
        per = " ".join(f"{x:.2f}" for x in ratios)
        print(f"{what:52} {sign}{bound:<5} {med:7.2f}  {'yes' if met else 'NO ':3}  {per}")
    # Memory and allocations are not timings: the largest value over the
    # rounds must meet the bound.
    for what, name, unit, bound in [
        ("live heap per entry at 1M, memo-Memoize (B)", "BytesPerEntry/memo-Memoize", "B/entry", 75),
        ("bytes allocated per hit, memo-Memoize", "Hit/memo-Memoize", "B/op", 0),
        ("bytes allocated per parallel hit, memo-Memoize", "HitParallel/memo-Memoize", "B/op", 0),
        ("bytes allocated per hit, memo-WTinyLFU", "Hit/memo-WTinyLFU", "B/op", 0),
        ("bytes allocated per hit, memo-EstimateSizes", "Hit/memo-EstimateSizes", "B/op", 0),
    ]:
        vals = [r[name][unit] for r in rs if name in r and unit in r[name]]
        if not vals:
            continue
        worst = max(vals)
        print(f"{what:52} <={bound:<5} {worst:7.1f}  {'yes' if worst <= bound else 'NO ':3}  (largest of {len(vals)})")


if __name__ == "__main__":
    main()
