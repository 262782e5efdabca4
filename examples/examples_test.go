// Package examples_test runs the programs in this folder, as the README tells
// a newcomer to.
package examples_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestExamplesRun runs every example program, bounded in time, and checks
// the parts of its output that do not depend on timing.
func TestExamplesRun(t *testing.T) {
	for name, want := range map[string][]string{
		"fib":      {"without the cache fib(30) makes 2692537 calls; with it, 31 ran the function", "fib(90) =  2880067194370816120", "cleared:   CacheInfo(hits=0, misses=0, maxsize=128, currsize=0)"},
		"keys":     {"ran 2 times; CacheInfo(hits=1, misses=2, maxsize=128, currsize=2)", "typed=true: answers [float64 int int64 uint8] from 4 entries"},
		"pipeline": {"600 records, 4 distinct addresses, 4 lookups run"},
		"slowcall": {"second call: EUR/USD = 1.08 in 0s\n", "CacheInfo(hits=1, misses=1, maxsize=128, currsize=1)"},
		"ttl":      {"t=0s     upstream=100 served=100"},
		"workers":  {"100 calls from 8 workers: 5 executions, 95 hits"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			goRun(t, "", want, "go run ./"+name, "./"+name)
		})
	}
}

// TestExamplesRunTwice runs the examples that keep their results on disk
// twice on one directory each: the second run computes nothing; then once
// with -clear, which computes everything again, and once more, which finds
// what the run with -clear stored. Each is a module of its own, for its
// SQLite dependency, and runs from its folder.
func TestExamplesRunTwice(t *testing.T) {
	// run is one run of an example: its flags, and what its output holds.
	type run struct{ flags, want []string }
	for name, runs := range map[string][]run{
		"disk": {
			{nil, []string{"memo.db, new", "4 computed, 0 from the disk\n", "memo       e7af4e3af53f557c"}},
			// The same result, computed or stored.
			{nil, []string{"memo.db, made by an earlier run", "0 computed, 4 from the disk, stored there by an earlier run", "memo       e7af4e3af53f557c"}},
			{[]string{"-clear"}, []string{"cleared the cache", "4 computed, 0 from the disk\n"}},
			{nil, []string{"0 computed, 4 from the disk"}},
		},
		// The first run computes each distinct key once across its four
		// worker processes.
		"multiprocess": {
			{nil, []string{"memo.db, new", "600 records, 40 distinct addresses", "40 executions in all for 40 distinct addresses, 80 calls: 40 saved by the shared cache"}},
			{nil, []string{"memo.db, made by an earlier run", "0 executions in all for 40 distinct addresses, 80 calls: 80 saved by the shared cache"}},
			{[]string{"-clear"}, []string{"cleared the shared cache", "40 executions in all for 40 distinct addresses"}},
			{nil, []string{"0 executions in all for 40 distinct addresses"}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for i, r := range runs {
				if !goRun(t, name, r.want, fmt.Sprintf("run %d of go run ./%s %v", i+1, name, r.flags), append([]string{".", "-dir", dir}, r.flags...)...) {
					return
				}
			}
		})
	}
}

// goRun runs `go run args...` in dir (this one if empty), within two
// minutes, and checks that its output holds every line of want; what names
// the run in failures. It reports whether the run succeeded.
func goRun(t *testing.T, dir string, want []string, what string, args ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if !assert.NoError(t, err, "%s:\n%s", what, out) {
		return false
	}
	for _, line := range want {
		assert.Contains(t, string(out), line, what)
	}
	return true
}
