#!/usr/bin/env bash
# Reruns every benchmark of this module and Python's functools.lru_cache on the
# same traces, writes the raw results to results.txt and prints a benchstat
# table of them on stdout, then memo's targets as ratios (ratios.py).
# Progress goes to stderr.
#
#   bash run.sh                      # the full run: 6 rounds, about 8 minutes on an idle 2-core machine
#   COUNT=1 BENCHTIME=200ms bash run.sh   # a quick smoke run
#   BENCH=GetOrCompute bash run.sh   # only the benchmarks matching a regexp
#   OUT=other.txt PYTHON=no bash run.sh   # another output file; Go only
set -euo pipefail
cd "$(dirname "$0")"

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
PYTHON=${PYTHON:-yes}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
out=${OUT:-results.txt}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Python's seconds per repetition, from BENCHTIME when it is a duration.
case $BENCHTIME in
  *ms) pybenchtime=$(awk "BEGIN { print ${BENCHTIME%ms} / 1000 }") ;;
  *s)  pybenchtime=${BENCHTIME%s} ;;
  *)   pybenchtime=1 ;;
esac

# Benchmarks share the machine with whatever else runs: say so when it is busy.
if [ -r /proc/loadavg ]; then
  read -r load _ < /proc/loadavg
  if awk "BEGIN { exit !($load > 0.5) }"; then
    echo "warning: load average $load before the run; other processes may skew the numbers" >&2
  fi
fi

# Rounds, not -count: each round runs every contender once, Go and Python,
# so that a machine that slows down or speeds up during the run (a shared
# VM does) shifts every contender alike instead of the ones that ran then.
echo "== building the benchmarks and writing the traces" >&2
go test -c -o "$tmp/bench.test" .
go run ./cmd/trace -dir "$tmp"
procs=$(go run ./cmd/trace -gomaxprocs)
# What the run ran on, as configuration lines benchstat shows.
{ echo "go: $(go version | cut -d' ' -f3)"; echo "python: $(python3 -V | cut -d' ' -f2)"; } > "$out"
for round in $(seq "$COUNT"); do
  echo "== round $round of $COUNT (benchtime $BENCHTIME): Go, then Python's functools.lru_cache" >&2
  # -test.timeout 0: the whole run takes longer than go test's default 10 minutes.
  "$tmp/bench.test" -test.run '^$' -test.bench "$BENCH" -test.benchmem -test.count 1 \
    -test.benchtime "$BENCHTIME" -test.timeout 0 | tee -a "$out" >&2
  if [ "$PYTHON" != no ]; then
    python3 lru_cache_bench.py --dir "$tmp" --count 1 --procs "$procs" --benchtime "$pybenchtime" \
      | tee -a "$out" >&2
  fi
done

echo "== benchstat $out, then the targets as ratios within rounds" >&2
go run "$BENCHSTAT" "$out"
echo
python3 ratios.py "$out"
