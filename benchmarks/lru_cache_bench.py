#!/usr/bin/env python3
"""Replay the Go benchmarks' key traces through Python's functools.lru_cache.

Reads the traces written by `go run ./cmd/trace -dir DIR` and prints result
lines in Go's benchmark format, so that benchstat can put them in the same
table as the Go contenders:

    BenchmarkHit/python-lru_cache-2   <iterations>   <ns> ns/op
    BenchmarkGetOrCompute/python-lru_cache-2   <iterations>   <ns> ns/op   <ratio> hit-ratio

Workloads (the same as the Go benchmarks of the same name):

    Hit           a cache of 1024 entries pre-filled with keys 0..1023, then
                  every key of the hit trace looked up: all hits.
    GetOrCompute  a cache of 4096 entries, keys over 65536 values; a miss
                  computes v = k. One untimed pass warms the cache, and the
                  hit ratio is that of the timed calls, from cache_info().

python-dict rows are the floor, as the Go map rows are: a plain dict lookup
(and, for GetOrCompute, an unbounded dict that never evicts) in the same loop.

Only the standard library is used. Time is time.perf_counter_ns over whole
passes of the trace, so it includes the interpreter's loop overhead, as the Go
numbers include the Go loop's.
"""

import argparse
import array
import functools
import os
import sys
import time

HIT_SPACE = 1024
GOC_SIZE = 4096


def read_trace(path):
    """Return the keys of a trace file: little-endian signed 64-bit ints."""
    keys = array.array("q")
    with open(path, "rb") as f:
        keys.frombytes(f.read())
    if sys.byteorder != "little":
        keys.byteswap()
    # A list holds the int objects once; iterating an array would build a new
    # int object for every key above 256, and time that too.
    return keys.tolist()


def compute(k):
    return k


def passes_for(run_pass, target_ns):
    """Time one pass, then return how many passes take about target_ns."""
    start = time.perf_counter_ns()
    run_pass()
    one = max(time.perf_counter_ns() - start, 1)
    return max(1, round(target_ns / one))


def timed(run_pass, passes):
    start = time.perf_counter_ns()
    for _ in range(passes):
        run_pass()
    return time.perf_counter_ns() - start


def line(name, procs, iterations, ns, extra=""):
    return f"{name}-{procs}\t{iterations}\t{ns / iterations:.2f} ns/op{extra}"


def bench_hit(keys, target_ns):
    f = functools.lru_cache(maxsize=HIT_SPACE)(compute)
    for k in range(HIT_SPACE):
        f(k)

    def run_pass():
        for k in keys:
            f(k)

    passes = passes_for(run_pass, target_ns)
    before = f.cache_info()
    ns = timed(run_pass, passes)
    after = f.cache_info()
    calls = passes * len(keys)
    if after.misses != before.misses:
        raise SystemExit("lru_cache missed in the hit workload: the trace is not the hit trace")
    return calls, ns


def bench_hit_dict(keys, target_ns):
    d = {k: k for k in range(HIT_SPACE)}

    def run_pass():
        for k in keys:
            d[k]

    passes = passes_for(run_pass, target_ns)
    return passes * len(keys), timed(run_pass, passes)


def bench_goc(keys, target_ns):
    f = functools.lru_cache(maxsize=GOC_SIZE)(compute)

    def run_pass():
        for k in keys:
            f(k)

    run_pass()  # warm-up, untimed, as in the Go benchmark
    passes = passes_for(run_pass, target_ns)
    before = f.cache_info()
    ns = timed(run_pass, passes)
    after = f.cache_info()
    calls = passes * len(keys)
    hits = after.hits - before.hits
    return calls, ns, hits / calls


def bench_goc_dict(keys, target_ns):
    d = {}

    def run_pass():
        for k in keys:
            try:
                d[k]
            except KeyError:
                d[k] = compute(k)

    run_pass()
    passes = passes_for(run_pass, target_ns)
    before = len(d)
    ns = timed(run_pass, passes)
    calls = passes * len(keys)
    misses = len(d) - before  # every miss adds one key, and nothing is removed
    return calls, ns, 1 - misses / calls


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True, help="directory holding hit.bin and getorcompute.bin")
    p.add_argument("--count", type=int, default=1, help="repetitions of each benchmark, as go test -count")
    p.add_argument("--procs", default=str(os.cpu_count() or 1),
                   help="suffix of the names, GOMAXPROCS of the Go run (default: CPU count)")
    p.add_argument("--benchtime", type=float, default=1.0, help="seconds per repetition, as go test -benchtime")
    args = p.parse_args()
    target = int(args.benchtime * 1e9)

    hit = read_trace(os.path.join(args.dir, "hit.bin"))
    goc = read_trace(os.path.join(args.dir, "getorcompute.bin"))

    print(f"# python {sys.version.split()[0]} ({sys.implementation.name}), functools.lru_cache")
    for _ in range(args.count):
        n, ns = bench_hit(hit, target)
        print(line("BenchmarkHit/python-lru_cache", args.procs, n, ns), flush=True)
    for _ in range(args.count):
        n, ns = bench_hit_dict(hit, target)
        print(line("BenchmarkHit/python-dict", args.procs, n, ns), flush=True)
    for _ in range(args.count):
        n, ns, ratio = bench_goc(goc, target)
        print(line("BenchmarkGetOrCompute/python-lru_cache", args.procs, n, ns,
                   f"\t{ratio:.4f} hit-ratio"), flush=True)
    for _ in range(args.count):
        n, ns, ratio = bench_goc_dict(goc, target)
        print(line("BenchmarkGetOrCompute/python-dict", args.procs, n, ns,
                   f"\t{ratio:.4f} hit-ratio"), flush=True)


if __name__ == "__main__":
    main()
