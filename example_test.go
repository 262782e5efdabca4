package memo_test

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomemo/memo"
)

// A recursive function memoized through its own cache, as examples/fib does.
func ExampleMemoize() {
	var fib func(int) int
	fib, cache := memo.Memoize(func(n int) int {
		if n < 2 {
			return n
		}
		return fib(n-1) + fib(n-2)
	})

	fmt.Println(fib(30))
	fmt.Println(cache.CacheInfo())
	cache.Clear()
	fmt.Println(cache.CacheInfo())
	// Output:
	// 832040
	// CacheInfo(hits=28, misses=31, maxsize=128, currsize=31)
	// CacheInfo(hits=0, misses=0, maxsize=128, currsize=0)
}

// A slow call runs once; its repeat comes from the cache, as examples/slowcall
// shows with timings.
func ExampleMemoizeErr() {
	calls := 0
	rate, cache := memo.MemoizeErr(func(pair string) (float64, error) {
		calls++ // imagine a two-second request here
		if pair != "EUR/USD" {
			return 0, fmt.Errorf("unknown pair %q", pair)
		}
		return 1.08, nil
	})

	r, _ := rate("EUR/USD")
	r, _ = rate("EUR/USD")
	_, err := rate("XXX/YYY")
	_, err = rate("XXX/YYY") // errors are not cached: this runs again
	fmt.Println(r, calls, err)
	fmt.Println(cache.CacheInfo())
	// Output:
	// 1.08 3 unknown pair "XXX/YYY"
	// CacheInfo(hits=1, misses=3, maxsize=128, currsize=1)
}

func ExampleMemoizeCtx() {
	lookup, _ := memo.MemoizeCtx(func(ctx context.Context, id int) (string, error) {
		return fmt.Sprintf("user %d", id), ctx.Err()
	})

	ctx, cancel := context.WithCancel(context.Background())
	name, err := lookup(ctx, 7)
	fmt.Println(name, err)

	cancel()
	name, err = lookup(ctx, 7) // a hit needs no waiting
	fmt.Println(name, err)
	_, err = lookup(ctx, 8) // a miss with an ended context
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// user 7 <nil>
	// user 7 <nil>
	// true
}

// Many goroutines share one memoized function; each distinct key runs once,
// however many workers ask for it at the same time, as examples/workers does.
func ExampleMemoize_workers() {
	var mu sync.Mutex
	runs := map[string]int{}
	profile, cache := memo.Memoize(func(user string) string {
		mu.Lock()
		runs[user]++
		mu.Unlock()
		return "profile of " + user
	})

	users := []string{"ada", "grace", "ken"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 30 {
				profile(users[(w+i)%len(users)])
			}
		})
	}
	wg.Wait()

	fmt.Println(runs)
	ci := cache.CacheInfo()
	fmt.Println(ci.Misses, ci.Hits)
	// Output:
	// map[ada:1 grace:1 ken:1]
	// 3 237
}

// Counters are ints, so a test compares them with plain numbers, or compares
// a whole snapshot, as testify's assert.Equal(t, want, got) does, so that a
// difference names its field.
func ExampleCacheInfo() {
	square, cache := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(2))
	for _, n := range []int{2, 2, 3, 4} {
		square(n)
	}
	got := cache.CacheInfo()
	want := memo.CacheInfo{Hits: 1, Misses: 3, MaxSize: 2, CurrSize: 2, Evictions: 1}
	fmt.Println(got == want, got.Hits == 1)
	// Output: true true
}

// Publishing the statistics through expvar takes one line, without memo
// importing expvar itself.
func ExampleCacheInfo_expvar() {
	square, cache := memo.Memoize(func(n int) int { return n * n })
	expvar.Publish("square_cache", expvar.Func(func() any { return cache.CacheInfo() }))

	square(3)
	square(3)

	var got map[string]any
	_ = json.Unmarshal([]byte(expvar.Get("square_cache").String()), &got)
	fmt.Println(got["hits"], got["misses"], got["currsize"], got["maxsize"])
	// Output: 1 1 1 128
}

func ExampleCacheInfo_HitRatio() {
	double, cache := memo.Memoize(func(n int) int { return 2 * n })
	for _, n := range []int{1, 2, 1, 1} {
		double(n)
	}
	fmt.Printf("%.2f\n", cache.CacheInfo().HitRatio())
	// Output: 0.50
}

func ExampleUnbounded() {
	_, cache := memo.Memoize(func(s string) int { return len(s) }, memo.Unbounded())
	fmt.Println(cache.CacheInfo())
	p := cache.Parameters()
	fmt.Println(p.MaxSize, p.Unbounded)
	// Output:
	// CacheInfo(hits=0, misses=0, maxsize=unbounded, currsize=0)
	// 0 true
}

func ExampleLRU() {
	cache := memo.NewLRU(2, func(k string, v int) { fmt.Println("evicted", k, v) })
	cache.Add("a", 1)
	cache.Add("b", 2)
	cache.Get("a") // a is now the most recently used
	cache.Add("c", 3)
	fmt.Println(cache.Keys())
	// Output:
	// evicted b 2
	// [c a]
}

// A value that changes upstream is served from the cache until its TTL has
// passed, then fetched afresh, as examples/ttl shows in real time. Here an
// injected clock stands in for the passing time.
func ExampleTTL() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	upstream := 100
	price, cache := memo.Memoize(func(item string) int { return upstream },
		memo.TTL(time.Minute), memo.Clock(func() time.Time { return now }))

	fmt.Println(price("widget"))
	upstream = 120
	now = now.Add(59 * time.Second)
	fmt.Println(price("widget"))
	now = now.Add(time.Second)
	fmt.Println(price("widget"))
	fmt.Println(cache.CacheInfo().Expirations)
	// Output:
	// 100
	// 100
	// 120
	// 1
}

// A session stays while it is used: each call within the idle time keeps it,
// and one after a longer pause finds it gone.
func ExampleExpireAfterAccess() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	logins := 0
	session, _ := memo.Memoize(func(user string) int { logins++; return logins },
		memo.ExpireAfterAccess(30*time.Minute), memo.Clock(func() time.Time { return now }))

	fmt.Println(session("ann"))
	for range 4 { // used every 20 minutes for 80 minutes
		now = now.Add(20 * time.Minute)
		fmt.Print(session("ann"))
	}
	fmt.Println()
	now = now.Add(30 * time.Minute) // idle for 30 minutes
	fmt.Println(session("ann"))
	// Output:
	// 1
	// 1111
	// 2
}

// A price in use is refreshed in the background in the last 10 seconds of
// its minute, so its callers never wait for the upstream.
func ExampleRefreshAhead() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var upstream atomic.Int32
	upstream.Store(100)
	refreshed := make(chan struct{}, 1)
	price, cache := memo.Memoize(func(item string) int { return int(upstream.Load()) },
		memo.TTL(time.Minute), memo.RefreshAhead(10*time.Second, 0),
		memo.Clock(func() time.Time { return now }),
		memo.Observe(func(e memo.Event[string, int]) {
			if e.Kind == memo.Replaced {
				refreshed <- struct{}{}
			}
		}))

	fmt.Println(price("widget"))
	upstream.Store(120)
	now = now.Add(50 * time.Second)
	fmt.Println(price("widget")) // the old price, and a refresh starts
	<-refreshed
	fmt.Println(price("widget"))
	fmt.Println(cache.CacheInfo())
	// Output:
	// 100
	// 100
	// 120
	// CacheInfo(hits=2, misses=1, maxsize=128, currsize=1)
}

// Hottest lists what a cache holds, the most recently used first; Coldest
// starts from the next to be evicted.
func ExampleCache_Hottest() {
	square, cache := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(3))
	for _, n := range []int{1, 2, 3, 1} {
		square(n)
	}
	for n, sq := range cache.Hottest() {
		fmt.Println(n, sq)
	}
	var coldest []int
	for n := range cache.Coldest() {
		coldest = append(coldest, n)
	}
	fmt.Println(coldest)
	// Output:
	// 1 1
	// 3 9
	// 2 4
	// [2 3 1]
}

// Values stored in the same wall-clock window expire together when it ends,
// whenever in the window they were stored.
func ExampleWindow() {
	now := time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC)
	runs := 0
	report, _ := memo.Memoize(func(day string) int { runs++; return runs },
		memo.Window(time.Minute), memo.Clock(func() time.Time { return now }))

	fmt.Println(report("a")) // stored at 12:00:10
	now = now.Add(49 * time.Second)
	fmt.Println(report("a")) // 12:00:59: same window
	now = now.Add(time.Second)
	fmt.Println(report("a")) // 12:01:00: a new window
	// Output:
	// 1
	// 1
	// 2
}

func ExampleMemoize2() {
	area, cache := memo.Memoize2(func(w, h int) int { return w * h })
	fmt.Println(area(3, 4), area(3, 4), area(4, 3))
	fmt.Println(cache.CacheInfo())
	// Output:
	// 12 12 12
	// CacheInfo(hits=1, misses=2, maxsize=128, currsize=2)
}

// By default numbers of different types that are equal share an entry, as in
// Python; Typed keeps them apart.
func ExampleTyped() {
	describe := func(x any) string { return fmt.Sprintf("%v (%T)", x, x) }

	plain, _ := memo.Memoize(describe)
	fmt.Println(plain(1), "|", plain(1.0), "|", plain(uint8(1)))

	typed, _ := memo.Memoize(describe, memo.Typed())
	fmt.Println(typed(1), "|", typed(1.0), "|", typed(uint8(1)))
	// Output:
	// 1 (int) | 1 (int) | 1 (int)
	// 1 (int) | 1 (float64) | 1 (uint8)
}

// A function of a slice and a map, which Go cannot use as a map key, memoized
// under a key built by KeyOf, as examples/keys does.
func ExampleMemoizeKeyed() {
	type query struct {
		Words  []string
		Weight map[string]int
	}
	runs := 0
	score, cache := memo.MemoizeKeyed(func(q query) (int, error) {
		runs++
		total := 0
		for _, w := range q.Words {
			total += q.Weight[w]
		}
		return total, nil
	}, func(q query) (string, error) { return memo.KeyOf(q.Words, q.Weight) })

	weights := map[string]int{"go": 3, "cache": 2}
	a, _ := score(query{[]string{"go", "cache"}, weights})
	b, _ := score(query{[]string{"go", "cache"}, weights}) // equal, not the same slice
	fmt.Println(a, b, runs, cache.CacheInfo())
	// Output: 5 5 1 CacheInfo(hits=1, misses=1, maxsize=128, currsize=1)
}

func ExampleKeyOf() {
	k1, _ := memo.KeyOf([]int{1, 2}, map[string]bool{"x": true})
	k2, _ := memo.KeyOf([]int{1, 2}, map[string]bool{"x": true})
	k3, _ := memo.KeyOf([2]int{1, 2}, map[string]bool{"x": true})
	fmt.Println(k1 == k2, k1 == k3)

	_, err := memo.KeyOf("ok", make(chan int))
	fmt.Println(err)
	// Output:
	// true false
	// memo: argument 1 (chan int): cannot be part of a key
}

// Observe is the one way to watch a cache; a log/slog adapter is a few lines.
func ExampleObserve() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for an output that does not change
			}
			return a
		},
	}))
	square, cache := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(1),
		memo.Observe(func(e memo.Event[int, int]) {
			logger.Info("memo", "event", e.Kind, "key", e.Key, "value", e.Value)
		}))
	square(2)
	square(3) // the cache holds one entry: 2 makes room
	cache.Forget(3)
	// Output:
	// level=INFO msg=memo event=Evicted key=2 value=4
	// level=INFO msg=memo event=Forgotten key=3 value=9
}

// A function of a big slice, keyed by a hash of its argument: each entry
// holds 16 bytes of key instead of the slice's whole encoding.
func ExampleHashKeyOf() {
	sum := func(xs []int) (int, error) {
		total := 0
		for _, x := range xs {
			total += x
		}
		return total, nil
	}
	f, cache := memo.MemoizeKeyed(sum, func(xs []int) (memo.KeyHash, error) { return memo.HashKeyOf(xs) })
	big := make([]int, 1_000_000)
	for i := range big {
		big[i] = i % 10
	}
	fmt.Println(f(big))
	fmt.Println(f(big))
	fmt.Println(cache.CacheInfo())
	// Output:
	// 4500000 <nil>
	// 4500000 <nil>
	// CacheInfo(hits=1, misses=1, maxsize=128, currsize=1)
}

// Peek and Contains look a key up without running the function, counting a
// hit or a miss, or changing recency; Put stores a value without running the
// function, to warm a cache or write an update through.
func ExampleCache_Put() {
	price, cache := memo.Memoize(func(item string) int {
		fmt.Println("looking up", item)
		return 100
	})
	cache.Put("apple", 120) // warmed at start-up
	fmt.Println(price("apple"))
	fmt.Println(cache.Contains("pear"))
	fmt.Println(price("pear"))
	v, ok := cache.Peek("pear")
	fmt.Println(v, ok)
	fmt.Println(cache.CacheInfo())
	// Output:
	// 120
	// false
	// looking up pear
	// 100
	// 100 true
	// CacheInfo(hits=1, misses=1, maxsize=128, currsize=2)
}

// SingleFlight shares one execution between concurrent calls for a key and
// keeps nothing: the next call runs again.
func ExampleSingleFlight() {
	calls := 0
	fetch, _ := memo.Memoize(func(url string) int {
		calls++
		return len(url)
	}, memo.SingleFlight())
	fetch("https://example.com")
	fetch("https://example.com")
	fmt.Println(calls)
	// Output:
	// 2
}

// Callers that share an execution share the context of the caller that
// started it. A result that depends on who asks must have that in its key:
// here the tenant is an argument, so two tenants never share a result, while
// the context still carries the deadline and trace values.
func ExampleMemoize2Ctx() {
	type tenantKey struct{}
	report, cache := memo.Memoize2Ctx(func(ctx context.Context, tenant, month string) (string, error) {
		return fmt.Sprintf("%s's report for %s (trace %v)", tenant, month, ctx.Value(tenantKey{})), nil
	})
	ctx := context.WithValue(context.Background(), tenantKey{}, "t-1")
	fmt.Println(report(ctx, "acme", "2026-10"))
	fmt.Println(report(ctx, "globex", "2026-10"))
	fmt.Println(report(ctx, "acme", "2026-10"))
	fmt.Println(cache.CacheInfo())
	// Output:
	// acme's report for 2026-10 (trace t-1) <nil>
	// globex's report for 2026-10 (trace t-1) <nil>
	// acme's report for 2026-10 (trace t-1) <nil>
	// CacheInfo(hits=1, misses=2, maxsize=128, currsize=2)
}

// Log sends a cache's events to a log/slog logger in one option. Here the
// store is down: its first failure (the cache's first reading of the store,
// when it is built, for no key) reaches the logger at level Warn, calls then
// leave the store alone for a while, and every call gets its result.
func ExampleLog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for an output that does not change
			}
			return a
		},
	}))
	square, cache := memo.Memoize(func(n int) int { return n * n },
		memo.Share(memo.Sharing{Store: downStore{}, Name: "square"}), memo.Log(logger))
	defer cache.Close()
	fmt.Println(square(3))
	// Output:
	// level=WARN msg="memo: the store failed" key=0 err="disk on fire"
	// 9
}

// downStore is a memo.Store whose every operation fails.
type downStore struct{}

var errDown = errors.New("disk on fire")

func (downStore) Get(context.Context, string, string) ([]byte, time.Time, bool, error) {
	return nil, time.Time{}, false, errDown
}
func (downStore) Set(context.Context, string, string, []byte, time.Time) error { return errDown }
func (downStore) Delete(context.Context, string, string) error                 { return errDown }
func (downStore) Clear(context.Context, string) error                          { return errDown }
func (downStore) Lease(context.Context, string, string, string, time.Duration) (bool, error) {
	return false, errDown
}
func (downStore) Unlease(context.Context, string, string, string) error { return errDown }
func (downStore) Changes(context.Context, string, uint64) ([]string, bool, uint64, error) {
	return nil, false, 0, errDown
}

// What the cache would do at other sizes: three passes over 150 keys thrash
// an LRU of 100 entries, while one of 200 would hit on every pass after the
// first.
func ExampleCache_SizeAdvice() {
	square, cache := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(100), memo.EstimateSizes(0))
	for range 3 {
		for n := range 150 {
			square(n)
		}
	}
	advice := cache.SizeAdvice()
	for _, e := range advice.Sizes {
		size := fmt.Sprint(e.Size)
		if e.Size == 0 {
			size = "unbounded"
		}
		fmt.Printf("%9s: %.2f\n", size, e.HitRatio)
	}
	fmt.Println(advice.Calls, "calls")
	// Output:
	//        50: 0.00
	//       100: 0.00
	//       200: 0.67
	//       400: 0.67
	//       800: 0.67
	// unbounded: 0.67
	// 450 calls
}

// A cache read by many goroutines at once: hits take no lock, so they do not
// wait for one another, and the counters stay exact.
func ExampleMemoize_goroutines() {
	price, cache := memo.Memoize(func(item int) int { return 100 + item }, memo.MaxSize(1000))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 10_000 {
				price(i % 100)
			}
		})
	}
	wg.Wait()
	info := cache.CacheInfo()
	fmt.Println(price(7), info.Hits+info.Misses, info.CurrSize)
	// Output: 107 80000 100
}
