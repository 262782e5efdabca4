#!/usr/bin/env bash
# Compares memo's own benchmarks (the root module's bench_test.go) between
# two revisions on this machine: both test binaries are built, then run in
# alternating rounds, so that a machine whose speed drifts shifts both alike.
# The raw results go to OUT (compare.txt by default), the old revision's
# under the configuration line "side: old", the new one's under "side: new";
# `benchstat -col side OUT`, the table on stdout, compares them.
#
#   bash compare.sh OLD NEW                 # e.g. bash compare.sh 05401d0 HEAD
#   ROUNDS=30 BENCH='BenchmarkGetOrCompute$' bash compare.sh OLD NEW
set -euo pipefail
cd "$(dirname "$0")/.."

old=${1:?usage: compare.sh OLD NEW}
new=${2:?usage: compare.sh OLD NEW}
ROUNDS=${ROUNDS:-20}
BENCH=${BENCH:-'BenchmarkHit$|BenchmarkGetOrCompute$'}
BENCHTIME=${BENCHTIME:-2000000x}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
out=${OUT:-benchmarks/compare.txt}

tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/old" 2>/dev/null; git worktree remove --force "$tmp/new" 2>/dev/null; rm -rf "$tmp"' EXIT
for side in old new; do
  rev=${!side}
  git worktree add -q --detach "$tmp/$side" "$rev"
  (cd "$tmp/$side" && go test -c -o "$tmp/$side.test" .)
done

{
  echo "# bash benchmarks/compare.sh $old $new (ROUNDS=$ROUNDS BENCH='$BENCH' BENCHTIME=$BENCHTIME)"
  echo "# old: $(git rev-parse --short "$old"), new: $(git rev-parse --short "$new"); $(go version)"
} > "$out"
: > "$tmp/old.txt"
: > "$tmp/new.txt"
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS" >&2
  for side in old new; do
    "$tmp/$side.test" -test.run '^$' -test.bench "$BENCH" -test.benchmem -test.count 1 \
      -test.benchtime "$BENCHTIME" | grep -E '^(goos|goarch|pkg|cpu|Benchmark)' >> "$tmp/$side.txt"
  done
done
for side in old new; do
  echo "side: $side" >> "$out"
  cat "$tmp/$side.txt" >> "$out"
done
go run "$BENCHSTAT" -col side "$out"
