package memo

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder collects the events of a cache; it checks that the cache's lock
// is free while it is called by calling the cache back.
type recorder[K comparable, V any] struct {
	mu     sync.Mutex
	events []Event[K, V]
	cache  *Cache[K, V]
}

func (r *recorder[K, V]) observe(e Event[K, V]) {
	r.cache.CacheInfo() // would deadlock if a lock were held
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder[K, V]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder[K, V]) take() []Event[K, V] {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

// TestObserveEntriesLeaving: every way an entry leaves reaches the observer
// once, with its key, value and reason, without a lock held.
func TestObserveEntriesLeaving(t *testing.T) {
	clk := newFakeClock(t0)
	rec := &recorder[string, int]{}
	var runs atomic.Int32
	f, c := Memoize(func(k string) int { return int(runs.Add(1)) },
		MaxSize(2), TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now), Observe(rec.observe))
	rec.cache = c
	ev := func(kind EventKind, k string, v int) Event[string, int] {
		return Event[string, int]{Kind: kind, Key: k, Value: v}
	}
	within(t, timeout, func() {
		f("a") // 1
		f("b") // 2
		f("c") // 3: evicts a
		assert.Equal(t, []Event[string, int]{ev(Evicted, "a", 1)}, rec.take())

		assert.True(t, c.Forget("b"))
		assert.Equal(t, []Event[string, int]{ev(Forgotten, "b", 2)}, rec.take())

		clk.Advance(12 * time.Second) // c is stale, within its grace
		assert.Equal(t, 3, f("c"), "served stale; the refresh runs in the background")
		eventually(func() bool { return rec.len() == 1 })
		assert.Equal(t, []Event[string, int]{ev(Replaced, "c", 3)}, rec.take())
		assert.Equal(t, 4, f("c"))

		clk.Advance(20 * time.Second) // past expiry and grace
		assert.Zero(t, c.CacheInfo().CurrSize)
		assert.Equal(t, []Event[string, int]{ev(Expired, "c", 4)}, rec.take())

		f("d")
		f("e")
		c.Clear()
		assert.ElementsMatch(t, []Event[string, int]{ev(Cleared, "d", 5), ev(Cleared, "e", 6)}, rec.take())
	})
}

// TestObservePanicLost: with an observer, a panic no caller receives is
// reported to it, and the program goes on.
func TestObservePanicLost(t *testing.T) {
	clk := newFakeClock(t0)
	rec := &recorder[int, int]{}
	var runs atomic.Int32
	f, c := Memoize(func(int) int {
		if runs.Add(1) > 1 {
			panic("refresh bug")
		}
		return 1
	}, TTL(time.Second), StaleWhileRevalidate(time.Hour), Clock(clk.Now), Observe(rec.observe))
	rec.cache = c
	within(t, timeout, func() {
		f(7)
		clk.Advance(2 * time.Second)
		assert.Equal(t, 1, f(7), "stale")
		eventually(func() bool { return rec.len() == 1 })
	})
	events := rec.take()
	require.Len(t, events, 1)
	assert.Equal(t, PanicLost, events[0].Kind)
	assert.Equal(t, 7, events[0].Key)
	require.NotNil(t, events[0].Panic)
	assert.Equal(t, "refresh bug", events[0].Panic.Value)
	assert.Equal(t, "PanicLost", events[0].Kind.String())
}

// TestObserveAbandonedPanic: the same for an execution whose only caller gave
// up through its context.
func TestObserveAbandonedPanic(t *testing.T) {
	got := make(chan Event[int, int], 1)
	started, release := make(chan struct{}), make(chan struct{})
	f, _ := MemoizeCtx(func(context.Context, int) (int, error) {
		close(started)
		<-release
		panic("abandoned bug")
	}, Observe(func(e Event[int, int]) { got <- e }))
	within(t, timeout, func() {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; cancel() }()
		_, err := f(ctx, 1)
		assert.ErrorIs(t, err, context.Canceled)
		close(release)
		e := <-got
		assert.Equal(t, PanicLost, e.Kind)
		assert.Equal(t, "abandoned bug", e.Panic.Value)
	})
}

// TestObserveTypes: the observer must take the cache's own key and value
// types; a mismatch is reported when the cache is built.
func TestObserveTypes(t *testing.T) {
	assert.PanicsWithValue(t, "memo: Observe was given a func(memo.Event[string,int]), but this cache needs a func(memo.Event[int,int])", func() {
		Memoize(func(n int) int { return n }, Observe(func(Event[string, int]) {}))
	})
	_, c := Memoize(func(n int) int { return n }, Observe[int, int](nil))
	assert.Nil(t, c.observe, "a nil observer is none")
	assert.Equal(t, "EventKind(0)", EventKind(0).String())
}

// syncBuffer is a strings.Builder that goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func TestLogLevels(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var seen []EventKind
	f, c := Memoize(func(n int) int { return n }, MaxSize(1), Log(logger),
		Observe(func(e Event[int, int]) { seen = append(seen, e.Kind) }))
	f(1)
	f(2) // evicts 1
	c.Forget(2)
	out := buf.String()
	assert.Contains(t, out, `level=DEBUG msg="memo: Evicted" key=1`)
	assert.Contains(t, out, `level=DEBUG msg="memo: Forgotten" key=2`)
	assert.NotContains(t, out, "value", "values are not logged")
	assert.Equal(t, []EventKind{Evicted, Forgotten}, seen, "Observe still receives every event")

	buf.Reset()
	release, started := make(chan struct{}), make(chan struct{})
	g, _ := MemoizeCtx(func(ctx context.Context, n int) (int, error) { close(started); <-release; panic("lost") }, Log(logger))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g(ctx, 1); close(done) }()
	<-started
	cancel() // the only caller gives up: nobody will receive the panic
	within(t, timeout, func() { <-done })
	close(release)
	within(t, timeout, func() {
		for !strings.Contains(buf.String(), "level=ERROR") {
			time.Sleep(time.Millisecond)
		}
	})
	assert.Contains(t, buf.String(), `msg="memo: a panic no caller received" key=1 panic=lost`)
}

// TestObservePutOverExpired: a Put over an entry past its expiry, which the
// cache still held, reports it once, as Expired, and counts it once, in
// Expirations; a Put over a fresh entry or a stale one within its grace
// reports it Replaced and counts no expiration.
func TestObservePutOverExpired(t *testing.T) {
	clk := newFakeClock(t0)
	rec := &recorder[string, int]{}
	f, c := Memoize(func(k string) int { return len(k) },
		TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now), Observe(rec.observe))
	rec.cache = c
	ev := func(kind EventKind, k string, v int) Event[string, int] {
		return Event[string, int]{Kind: kind, Key: k, Value: v}
	}
	within(t, timeout, func() {
		f("a")
		c.Put("a", 10)
		assert.Equal(t, []Event[string, int]{ev(Replaced, "a", 1)}, rec.take(), "fresh")

		clk.Advance(12 * time.Second) // stale, within its grace
		c.Put("a", 11)
		assert.Equal(t, []Event[string, int]{ev(Replaced, "a", 10)}, rec.take(), "stale within its grace")

		clk.Advance(20 * time.Second) // past expiry and grace, still held
		c.Put("a", 12)
		assert.Equal(t, []Event[string, int]{ev(Expired, "a", 11)}, rec.take(), "past its grace")
		assert.Equal(t, 1, c.CacheInfo().Expirations)
		assert.Equal(t, 12, f("a"))
	})
}

// TestObserveRefreshAfterGrace: when a stale entry's grace ends while its
// refresh runs, the entry is reported once, as Expired, and the refresh's
// value is stored all the same.
func TestObserveRefreshAfterGrace(t *testing.T) {
	clk := newFakeClock(t0)
	rec := &recorder[string, int]{}
	started, release := make(chan struct{}, 1), make(chan struct{})
	var runs atomic.Int32
	f, c := Memoize(func(k string) int {
		if n := runs.Add(1); n > 1 {
			started <- struct{}{}
			<-release
			return int(n)
		}
		return 1
	}, TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now), Observe(rec.observe))
	rec.cache = c
	within(t, timeout, func() {
		f("a")
		clk.Advance(12 * time.Second)
		assert.Equal(t, 1, f("a"), "stale; the refresh starts")
		<-started
		clk.Advance(10 * time.Second) // the grace ends while the refresh runs
		close(release)
		eventually(func() bool { v, _ := c.Peek("a"); return v == 2 && rec.len() > 0 })
		assert.Equal(t, []Event[string, int]{{Kind: Expired, Key: "a", Value: 1}}, rec.take())
		assert.Equal(t, 1, c.CacheInfo().Expirations)
		assert.Equal(t, 2, f("a"), "the refresh's value is stored")
	})
}

// TestObserveClearExpired: Clear reports an entry past its expiry, which the
// cache still held, as Forget does: Expired, and counted in Expirations
// where the counters survive (a Clear read from a shared cache's store).
// Fresh entries and stale ones within their grace are Cleared.
func TestObserveClearExpired(t *testing.T) {
	clk := newFakeClock(t0)
	rec := &recorder[string, int]{}
	f, c := Memoize(func(k string) int { return len(k) },
		TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now), Observe(rec.observe))
	rec.cache = c
	ev := func(kind EventKind, k string, v int) Event[string, int] {
		return Event[string, int]{Kind: kind, Key: k, Value: v}
	}
	within(t, timeout, func() {
		f("a")
		clk.Advance(20 * time.Second) // a: past expiry and grace, still held
		assert.False(t, c.Forget("a"))
		assert.Equal(t, []Event[string, int]{ev(Expired, "a", 1)}, rec.take(), "Forget")

		f("bb")
		clk.Advance(6 * time.Second)
		f("ccc")
		clk.Advance(12 * time.Second) // bb is past its grace, ccc stale within its own
		c.clearLocal(false, nil)      // as a Clear read from the store: the counters stay
		assert.ElementsMatch(t, []Event[string, int]{ev(Expired, "bb", 2), ev(Cleared, "ccc", 3)}, rec.take(), "Clear")
		assert.Equal(t, 2, c.CacheInfo().Expirations, "a's and bb's")

		f("dddd")
		clk.Advance(20 * time.Second)
		c.Clear()
		assert.Equal(t, []Event[string, int]{ev(Expired, "dddd", 4)}, rec.take(), "Clear")
		assert.Zero(t, c.CacheInfo().Expirations, "Clear resets the counters")
	})
}
