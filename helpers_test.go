package memo

import (
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/trace"
	"github.com/stretchr/testify/require"
)

// Helpers shared by the package's tests.

// timeout bounds the tests that could deadlock, through within.
const timeout = 10 * time.Second

// eventually spins until cond holds; callers bound it with within.
func eventually(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}

// within runs f and fails the test if it has not returned after d, so that a
// deadlock fails instead of hanging the suite.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %v: deadlock?", d)
	}
}

// longer scales the number of random sequences a model test runs: ten times
// as many when MEMO_LONG_TESTS is set, as CI does.
func longer(n int) int {
	if os.Getenv("MEMO_LONG_TESTS") != "" {
		return 10 * n
	}
	return n
}

// hammer runs body in n goroutines at once, goroutine g with a random source
// seeded (g, seed), and fails the test if they have not all returned within
// limit.
func hammer(t *testing.T, n int, limit time.Duration, seed uint64, body func(g int, rng *rand.Rand)) {
	t.Helper()
	within(t, limit, func() {
		var wg sync.WaitGroup
		for g := range n {
			wg.Go(func() { body(g, rand.New(rand.NewPCG(uint64(g), seed))) })
		}
		wg.Wait()
	})
}

// hitting calls hit over and over from n goroutines until the returned stop
// is called, which waits for them to return. They are also told to stop when
// the test ends, so that a bound that fires does not leave them running.
func hitting(t *testing.T, n int, hit func()) (stop func()) {
	done := make(chan struct{})
	halt := sync.OnceFunc(func() { close(done) })
	t.Cleanup(halt)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
					hit()
				}
			}
		})
	}
	return func() {
		halt()
		wg.Wait()
	}
}

// callSquares calls f, a memoized k*k, calls times from each of goroutines
// goroutines (as hammer does, with seed), on keys drawn by key, and fails the
// test on a wrong answer; after each call, goroutine g runs also(g, i, k)
// for its i-th call, on key k.
func callSquares(t *testing.T, f func(int) int, goroutines, calls int, seed uint64, key func(*rand.Rand) int, also func(g, i, k int)) {
	t.Helper()
	hammer(t, goroutines, 60*time.Second, seed, func(g int, rng *rand.Rand) {
		for i := range calls {
			k := key(rng)
			if v := f(k); v != k*k {
				t.Errorf("f(%d) = %d, want %d", k, v, k*k)
			}
			also(g, i, k)
		}
	})
}

// gate is a function to memoize whose executions block until released, so a
// test can line callers up behind an execution in progress.
type gate struct {
	runs    atomic.Int32
	started chan int
	release chan struct{}
}

func newGate() *gate {
	return &gate{started: make(chan int, 100), release: make(chan struct{})}
}

func (g *gate) fn(k int) (int, error) {
	g.runs.Add(1)
	g.started <- k
	<-g.release
	return k * 10, nil
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// t0 is where the tests' fake clocks start.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// counted returns a function to memoize that returns how many times it has
// run, so a test sees whether a call was served from the cache.
func counted() (func(string) int, *atomic.Int32) {
	var n atomic.Int32
	return func(string) int { return int(n.Add(1)) }, &n
}

// raceEnabled reports whether the race detector is on; sync.Pool
// drops items at random under it.
func raceEnabled() bool {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// counts are a CacheInfo's counters by name. Tests compare them whole, so a
// failure names the counter that differs, and a counter a test leaves out
// must be 0.
type counts struct {
	Hits, Misses, Evictions, Coalesced, Errors, Expirations int
	StoreHits, StoreMisses, StoreWaits, StoreErrors         int
}

func countsOf(ci CacheInfo) counts {
	return counts{ci.Hits, ci.Misses, ci.Evictions, ci.Coalesced, ci.Errors, ci.Expirations,
		ci.StoreHits, ci.StoreMisses, ci.StoreWaits, ci.StoreErrors}
}

// readTrace reads a trace of testdata/traces, failing the test if it cannot.
func readTrace(t *testing.T, name string) []int {
	t.Helper()
	keys, err := trace.Read("testdata/traces/" + name)
	require.NoError(t, err)
	return keys
}

// exactHitRatio replays keys through an exact LRU of size entries (0:
// unbounded) and returns its hit ratio.
func exactHitRatio(keys []int, size int) float64 {
	hits := 0
	if size == 0 {
		seen := map[int]bool{}
		for _, k := range keys {
			if seen[k] {
				hits++
			}
			seen[k] = true
		}
		return float64(hits) / float64(len(keys))
	}
	l := NewLRU[int, struct{}](size, nil)
	for _, k := range keys {
		if _, ok := l.Get(k); ok {
			hits++
		} else {
			l.Add(k, struct{}{})
		}
	}
	return float64(hits) / float64(len(keys))
}
