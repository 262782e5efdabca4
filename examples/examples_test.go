// Package examples_test runs the programs in this folder, as the README tells
// a newcomer to.
package examples_test

import (
	"context"
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
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, "go", "run", "./"+name).CombinedOutput()
			if !assert.NoError(t, err, "go run ./%s:\n%s", name, out) {
				return
			}
			for _, line := range want {
				assert.Contains(t, string(out), line, "go run ./%s", name)
			}
		})
	}
}

// TestDiskExampleRunsTwice runs the disk example twice on one directory: the
// second run answers everything from the disk.
func TestDiskExampleRunsTwice(t *testing.T) {
	dir := t.TempDir()
	for i, want := range []string{"4 computed, 0 from the disk", "0 computed, 4 from the disk"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "run", ".", "-dir", dir)
		cmd.Dir = "disk" // a module of its own, for its SQLite dependency
		out, err := cmd.CombinedOutput()
		cancel()
		if !assert.NoError(t, err, "run %d of go run ./disk:\n%s", i+1, out) {
			return
		}
		assert.Contains(t, string(out), want, "run %d", i+1)
		assert.Contains(t, string(out), "memo       e7af4e3af53f557c", "run %d: the same result, computed or stored", i+1)
	}
}

// TestMultiprocessExampleRunsTwice runs the pipeline twice on one directory:
// the first run computes each distinct key once across its four worker
// processes, the second computes nothing.
func TestMultiprocessExampleRunsTwice(t *testing.T) {
	dir := t.TempDir()
	for i, want := range []string{
		"40 executions in all for 40 distinct addresses, 80 calls: 40 saved by the shared cache",
		"0 executions in all for 40 distinct addresses, 80 calls: 80 saved by the shared cache",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "run", ".", "-dir", dir)
		cmd.Dir = "multiprocess" // a module of its own, for its SQLite dependency
		out, err := cmd.CombinedOutput()
		cancel()
		if !assert.NoError(t, err, "run %d of go run ./multiprocess:\n%s", i+1, out) {
			return
		}
		assert.Contains(t, string(out), "600 records, 40 distinct addresses", "run %d", i+1)
		assert.Contains(t, string(out), want, "run %d", i+1)
	}
}
