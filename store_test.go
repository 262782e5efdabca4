package memo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/await"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// memStore is a Store in memory, standing for a store shared by processes
// (each process a Cache), with faults to inject.
type memStore struct {
	mu      sync.Mutex
	values  map[[2]string]stored
	leases  map[[2]string]lease
	changes []change // changes[i] has cursor i+1
	now     func() time.Time

	fail atomic.Pointer[error] // every operation fails with it
	// onLease, if set, is called by Lease with its context and token
	// before it does anything; an error it returns is Lease's.
	onLease atomic.Pointer[func(ctx context.Context, token string) error]
	hang    atomic.Bool  // every operation blocks until its context ends
	ops     atomic.Int64 // operations tried
	sets    atomic.Int64
	deletes atomic.Int64
}

type stored struct {
	value   []byte
	expires time.Time
}

type lease struct {
	token   string
	expires time.Time
}

type change struct {
	ns, key string
	all     bool
}

func newMemStore() *memStore {
	return &memStore{values: map[[2]string]stored{}, leases: map[[2]string]lease{}, now: time.Now}
}

// fault returns the injected fault, if any, after waiting out a hang.
func (m *memStore) fault(ctx context.Context) error {
	m.ops.Add(1)
	if m.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if err := m.fail.Load(); err != nil {
		return *err
	}
	return nil
}

func (m *memStore) Get(ctx context.Context, ns, key string) ([]byte, time.Time, bool, error) {
	if err := m.fault(ctx); err != nil {
		return nil, time.Time{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[[2]string{ns, key}]
	if !ok || (!v.expires.IsZero() && !m.now().Before(v.expires)) {
		return nil, time.Time{}, false, nil
	}
	return append([]byte(nil), v.value...), v.expires, true, nil
}

func (m *memStore) Set(ctx context.Context, ns, key string, value []byte, expires time.Time) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[[2]string{ns, key}] = stored{append([]byte(nil), value...), expires}
	m.sets.Add(1)
	return nil
}

func (m *memStore) Delete(ctx context.Context, ns, key string) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, [2]string{ns, key})
	m.changes = append(m.changes, change{ns: ns, key: key})
	m.deletes.Add(1)
	return nil
}

func (m *memStore) Clear(ctx context.Context, ns string) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.values {
		if k[0] == ns {
			delete(m.values, k)
		}
	}
	m.changes = append(m.changes, change{ns: ns, all: true})
	return nil
}

func (m *memStore) Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error) {
	if err := m.fault(ctx); err != nil {
		return false, err
	}
	if f := m.onLease.Load(); f != nil {
		if err := (*f)(ctx, token); err != nil {
			return false, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{ns, key}
	if l, ok := m.leases[k]; ok && l.token != token && m.now().Before(l.expires) {
		return false, nil
	}
	m.leases[k] = lease{token, m.now().Add(d)}
	return true, nil
}

func (m *memStore) Unlease(ctx context.Context, ns, key, token string) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{ns, key}
	if m.leases[k].token == token {
		delete(m.leases, k)
	}
	return nil
}

func (m *memStore) Changes(ctx context.Context, ns string, cursor uint64) ([]string, bool, uint64, error) {
	if err := m.fault(ctx); err != nil {
		return nil, false, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next := uint64(len(m.changes)) + 1
	if cursor == 0 {
		return nil, false, next, nil
	}
	var keys []string
	all := false
	for _, c := range m.changes[cursor-1:] {
		if c.ns != ns {
			continue
		}
		if c.all {
			all = true
		}
		keys = append(keys, c.key)
	}
	return keys, all, next, nil
}

// only returns the single value the store holds.
func (m *memStore) only(t *testing.T) []byte {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Len(t, m.values, 1)
	for _, v := range m.values {
		return v.value
	}
	return nil
}

// damage replaces every value the store holds by f of it.
func (m *memStore) damage(f func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.values {
		v.value = f(append([]byte(nil), v.value...))
		m.values[k] = v
	}
}

// process builds a memoized function of the shared square, standing for one
// process, with the executions counted in runs.
func process(t *testing.T, st Store, runs *atomic.Int64, opts ...Option) (func(context.Context, int) (int, error), *Cache[int, int]) {
	t.Helper()
	sh := Sharing{Store: st, Name: "square", Poll: 10 * time.Millisecond, Timeout: 200 * time.Millisecond}
	f, c := MemoizeCtx(func(_ context.Context, n int) (int, error) {
		runs.Add(1)
		return n * n, nil
	}, append([]Option{Share(sh)}, opts...)...)
	t.Cleanup(c.Close)
	return f, c
}

// mustKey returns the store key of k, a short key.
func mustKey(t *testing.T, k any) string {
	t.Helper()
	key, err := TypedKeyOf(k)
	require.NoError(t, err)
	return key
}

func TestShareAcrossProcesses(t *testing.T) {
	st := newMemStore()
	var runsA, runsB atomic.Int64
	a, ca := process(t, st, &runsA)
	b, cb := process(t, st, &runsB)
	ctx := context.Background()

	v, err := a(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, 49, v)
	v, err = b(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, 49, v)
	v, err = b(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, 49, v)

	assert.Equal(t, int64(1), runsA.Load())
	assert.Equal(t, int64(0), runsB.Load(), "b found 7 in the store")
	assert.Equal(t, counts{Misses: 1, StoreMisses: 1}, countsOf(ca.CacheInfo()))
	assert.Equal(t, counts{Hits: 1, Misses: 1, StoreHits: 1}, countsOf(cb.CacheInfo()))
}

func TestShareSurvivesStoreFailures(t *testing.T) {
	st := newMemStore()
	var failures atomic.Int64
	var runs atomic.Int64
	sh := Sharing{Store: st, Name: "square", Poll: 10 * time.Millisecond}
	f, c := MemoizeErr(func(n int) (int, error) { runs.Add(1); return n * n, nil },
		Share(sh), Observe(func(e Event[int, int]) {
			if e.Kind == StoreFailed {
				failures.Add(1)
			}
		}))
	defer c.Close()

	// The store goes down: calls go on without it, and the failures are
	// counted and reported.
	down := errors.New("store down")
	st.fail.Store(&down)
	for range 3 {
		v, err := f(3)
		require.NoError(t, err)
		assert.Equal(t, 9, v)
	}
	assert.Equal(t, int64(1), runs.Load(), "the memory tier works without the store")
	assert.Positive(t, c.CacheInfo().StoreErrors)
	assert.Equal(t, int64(c.CacheInfo().StoreErrors), failures.Load(), "each failure is reported")

	// It is not hammered: after its first failure, executions leave it
	// alone, and only the poller tries it, once per Poll.
	before := st.ops.Load()
	for n := range 100 {
		v, err := f(100 + n)
		require.NoError(t, err)
		assert.Equal(t, (100+n)*(100+n), v)
	}
	assert.Less(t, st.ops.Load()-before, int64(10), "100 executions while the store is down")

	// It comes back: within a Poll, executions use it again.
	st.fail.Store(nil)
	n := 1000
	await.Soon(t, func() bool { n++; f(n); return st.sets.Load() > 0 }, "the store is used again")
}

func TestShareBoundsASlowStore(t *testing.T) {
	st := newMemStore()
	var runs atomic.Int64
	sh := Sharing{Store: st, Name: "square", Timeout: 20 * time.Millisecond, Poll: time.Hour}
	f, c := Memoize(func(n int) int { runs.Add(1); return n * n }, Share(sh))
	defer c.Close()
	st.hang.Store(true)
	start := time.Now()
	assert.Equal(t, 25, f(5))
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 20*time.Millisecond, "the lookup waited out the Timeout")
	assert.Less(t, took, 2*time.Second, "each store operation is bounded by Timeout")
	// The store is now paused: the next execution does not wait for it.
	start = time.Now()
	assert.Equal(t, 36, f(6))
	assert.Less(t, time.Since(start), 20*time.Millisecond)
	assert.Equal(t, int64(2), runs.Load())
	assert.Equal(t, 1, c.CacheInfo().StoreErrors)
}

func TestShareDamagedAndForeignValues(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		damage  func([]byte) []byte
		counted bool // as a store error
	}{
		{"bit flipped in the body", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, true},
		{"bit flipped in the fingerprint", func(b []byte) []byte { b[5] ^= 0x10; return b }, true},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, true},
		{"shorter than a frame", func(b []byte) []byte { return b[:5] }, true},
		{"empty", func(b []byte) []byte { return nil }, true},
		{"foreign bytes", func(b []byte) []byte { return []byte("some other program's value") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			var runsA, runsB atomic.Int64
			a, _ := process(t, st, &runsA)
			b, cb := process(t, st, &runsB)
			_, err := a(ctx, 12)
			require.NoError(t, err)
			st.damage(tc.damage)
			v, err := b(ctx, 12)
			require.NoError(t, err)
			assert.Equal(t, 144, v)
			assert.Equal(t, int64(1), runsB.Load(), "a damaged value is a miss")
			errs := cb.CacheInfo().StoreErrors
			if tc.counted {
				assert.Equal(t, 1, errs)
			} else {
				assert.Equal(t, 0, errs)
			}
			// b overwrote it with a good value.
			_, _, err = unframe("square/0", mustKey(t, 12), fingerprint(reflect.TypeFor[int]()), st.only(t))
			assert.NoError(t, err)
		})
	}
}

func TestShareForeignValueType(t *testing.T) {
	st := newMemStore()
	sh := Sharing{Store: st, Name: "f", Poll: 10 * time.Millisecond}
	fi, ci := Memoize(func(n int) int { return n }, Share(sh))
	defer ci.Close()
	type other struct{ N int }
	var runs atomic.Int64
	fo, co := Memoize(func(n int) other { runs.Add(1); return other{n + 1} }, Share(sh))
	defer co.Close()
	assert.Equal(t, 3, fi(3))
	assert.Equal(t, other{4}, fo(3), "a value stored for another type is not decoded")
	assert.Equal(t, int64(1), runs.Load())
	assert.Equal(t, 0, co.CacheInfo().StoreErrors, "nor is it an error")
}

func TestShareOneExecutionAcrossProcesses(t *testing.T) {
	st := newMemStore()
	release := make(chan struct{})
	started := make(chan struct{})
	var runs atomic.Int64
	sh := Sharing{Store: st, Name: "slow", Poll: time.Hour}
	slow := func(n int) int {
		if runs.Add(1) == 1 {
			close(started)
		}
		<-release
		return n * 2
	}
	a, ca := Memoize(slow, Share(sh))
	defer ca.Close()
	b, cb := Memoize(slow, Share(sh))
	defer cb.Close()

	got := make(chan int, 2)
	go func() { got <- a(21) }()
	<-started
	go func() { got <- b(21) }()
	// b is waiting on a's lease: only a has run.
	within(t, 5*time.Second, func() {
		for cb.CacheInfo().StoreMisses == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	close(release)
	within(t, 5*time.Second, func() {
		assert.Equal(t, 42, <-got)
		assert.Equal(t, 42, <-got)
	})
	assert.Equal(t, int64(1), runs.Load(), "one execution for both processes")
	assert.Equal(t, 1, cb.CacheInfo().StoreWaits)
}

func TestShareForgetAndClearReachOtherProcesses(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	var runsA, runsB atomic.Int64
	a, ca := process(t, st, &runsA)
	b, cb := process(t, st, &runsB)
	for _, n := range []int{1, 2, 3} {
		_, err := a(ctx, n)
		require.NoError(t, err)
		_, err = b(ctx, n)
		require.NoError(t, err)
	}
	require.Equal(t, 3, cb.CacheInfo().CurrSize)

	assert.True(t, ca.Forget(2))
	await.Soon(t, func() bool { return cb.CacheInfo().CurrSize == 2 }, "b drops 2 after a's Forget")
	_, err := b(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, int64(1), runsB.Load(), "2 was deleted from the store too")

	ca.Clear()
	await.Soon(t, func() bool { return cb.CacheInfo().CurrSize == 0 }, "b drops everything after a's Clear")
	assert.Equal(t, 4, cb.CacheInfo().Hits+cb.CacheInfo().Misses, "another process's Clear leaves b's counters")
	_, err = b(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(2), runsB.Load(), "the store was cleared too")
}

func TestShareForgetDuringExecution(t *testing.T) {
	st := newMemStore()
	inside := make(chan struct{})
	release := make(chan struct{})
	sh := Sharing{Store: st, Name: "f", Poll: time.Hour}
	var runs atomic.Int64
	f, c := Memoize(func(n int) int {
		if runs.Add(1) == 1 {
			close(inside)
			<-release
		}
		return n
	}, Share(sh))
	defer c.Close()
	done := make(chan struct{})
	go func() { f(1); close(done) }()
	<-inside
	c.Forget(1)
	close(release)
	within(t, 5*time.Second, func() { <-done })
	st.mu.Lock()
	n := len(st.values)
	st.mu.Unlock()
	assert.Equal(t, 0, n, "a result computed across a Forget is taken back out of the store")
	f(1)
	assert.Equal(t, int64(2), runs.Load())
}

func TestShareExpiryCarried(t *testing.T) {
	clk := newFakeClock(t0)
	st := newMemStore()
	st.now = clk.Now
	var runsA, runsB atomic.Int64
	a, _ := process(t, st, &runsA, TTL(time.Minute), Clock(clk.Now))
	b, cb := process(t, st, &runsB, TTL(time.Minute), Clock(clk.Now))
	ctx := context.Background()
	_, err := a(ctx, 5)
	require.NoError(t, err)
	clk.Advance(40 * time.Second)
	_, err = b(ctx, 5) // from the store, which holds it 20s more
	require.NoError(t, err)
	assert.Equal(t, int64(0), runsB.Load())
	clk.Advance(30 * time.Second)
	_, err = b(ctx, 5)
	require.NoError(t, err)
	assert.Equal(t, int64(1), runsB.Load(), "b's copy expired with the store's, not a minute after b read it")
	assert.Equal(t, 1, cb.CacheInfo().Expirations)
}

func TestShareRefusals(t *testing.T) {
	st := newMemStore()
	sh := Sharing{Store: st, Name: "f"}
	type secret struct{ n int }
	type withIface struct{ V any }
	for name, build := range map[string]func(){
		"nil store":      func() { Memoize(func(int) int { return 0 }, Share(Sharing{Name: "f"})) },
		"no name":        func() { Memoize(func(int) int { return 0 }, Share(Sharing{Store: st})) },
		"negative":       func() { Memoize(func(int) int { return 0 }, Share(Sharing{Store: st, Name: "f", Lease: -1})) },
		"pointer key":    func() { Memoize(func(*int) int { return 0 }, Share(sh)) },
		"chan in key":    func() { Memoize(func(struct{ C chan int }) int { return 0 }, Share(sh)) },
		"unexported":     func() { Memoize(func(int) secret { return secret{n: 1} }, Share(sh)) },
		"interface":      func() { Memoize(func(int) withIface { return withIface{} }, Share(sh)) },
		"func value":     func() { Memoize(func(int) func() { return nil }, Share(sh)) },
		"size 0 checked": func() { Memoize(func(*int) int { return 0 }, Share(sh), MaxSize(0)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "the constructor panics")
				assert.Contains(t, fmt.Sprint(r), "memo: Share")
			}()
			build()
		})
	}

	f, c := MemoizeErr(func(k any) (int, error) { return 1, nil }, Share(sh))
	defer c.Close()
	_, err := f(new(int))
	assert.ErrorIs(t, err, ErrUnsupportedArgument)
	assert.ErrorContains(t, err, "compared by address")
	v, err := f(struct{ A [2]any }{[2]any{1, "x"}})
	assert.NoError(t, err, "an interface key holding plain values is shared")
	assert.Equal(t, 1, v)
}

// jsonCodec is a Codec of encoding/json.
type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)   { return json.Marshal(v) }
func (jsonCodec) Unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestShareCodec(t *testing.T) {
	st := newMemStore()
	type Point struct{ X, Y int }
	sh := Sharing{Store: st, Name: "p", Codec: jsonCodec{}}
	f, c := Memoize(func(n int) Point { return Point{n, -n} }, Share(sh))
	defer c.Close()
	assert.Equal(t, Point{2, -2}, f(2))
	body, _, err := unframe("p/0", mustKey(t, 2), fingerprint(reflect.TypeFor[Point]()), st.only(t))
	require.NoError(t, err)
	assert.Equal(t, byte(bodyCodec), body[0], "the codec's bytes, marked")
	assert.JSONEq(t, `{"X":2,"Y":-2}`, string(body[1:]))
}

func TestShareCloseStopsThePoller(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := newMemStore()
	_, c := Memoize(func(n int) int { return n }, Share(Sharing{Store: st, Name: "f", Poll: time.Millisecond}))
	within(t, 5*time.Second, func() {
		c.Close()
		c.Close()
	})
}

func TestShareLongKeysCompact(t *testing.T) {
	st := newMemStore()
	sh := Sharing{Store: st, Name: "long", Poll: time.Hour}
	var runs atomic.Int64
	f, c := Memoize(func(s string) int { runs.Add(1); return len(s) }, Share(sh))
	defer c.Close()
	g, cg := Memoize(func(s string) int { runs.Add(1); return len(s) }, Share(sh))
	defer cg.Close()
	a, b := strings.Repeat("a", 1000), strings.Repeat("b", 1000)
	assert.Equal(t, 1000, f(a))
	assert.Equal(t, 1000, g(a), "shared under its compact key")
	assert.Equal(t, int64(1), runs.Load())
	st.mu.Lock()
	var where [2]string
	var what stored
	for k, v := range st.values {
		where, what = k, v
	}
	st.mu.Unlock()
	assert.Len(t, where[1], 33, "'h' and a SHA-256")
	assert.Equal(t, byte('h'), where[1][0])

	// Were b's compact key to collide with a's, b would find a's value
	// under it: the checksum, over the whole key, turns it away.
	kb, err := c.tier.key(b)
	require.NoError(t, err)
	st.mu.Lock()
	st.values[[2]string{where[0], kb.store}] = what
	st.mu.Unlock()
	assert.Equal(t, 1000, g(b))
	assert.Equal(t, int64(2), runs.Load(), "b ran: a's value was not served for it")
	assert.Equal(t, 1, cg.CacheInfo().StoreErrors)
}

func TestSharePutWritesThrough(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	var runsA, runsB atomic.Int64
	a, ca := process(t, st, &runsA)
	b, cb := process(t, st, &runsB)
	_, err := a(ctx, 3)
	require.NoError(t, err)
	v, err := b(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, 9, v)

	require.True(t, ca.Put(3, 1000), "an update written through")
	await.Soon(t, func() bool { v, _ := b(ctx, 3); return v == 1000 }, "b sees the value Put in a")
	assert.Equal(t, int64(0), runsB.Load())
	assert.Positive(t, cb.CacheInfo().StoreHits)
}

func TestShareValuesExactlyOrNotAtAll(t *testing.T) {
	type Node struct {
		Count *int
		Tags  []string
		When  time.Time
	}
	zero := 0
	for _, tc := range []struct {
		name   string
		value  *Node
		stored bool
	}{
		{"nil pointer: the zero value, stored as such", nil, true},
		{"plain value", &Node{Tags: []string{"a"}, When: t0}, true},
		{"time in another zone comes back equal", &Node{When: t0.In(time.FixedZone("X", 3600))}, true},
		{"pointer to a zero value: gob gives back nil", &Node{Count: &zero}, false},
		{"empty slice: gob gives back nil", &Node{Tags: []string{}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			sh := Sharing{Store: st, Name: "node", Poll: time.Hour}
			var runs atomic.Int64
			fn := func(string) *Node { runs.Add(1); return tc.value }
			a, ca := Memoize(fn, Share(sh))
			defer ca.Close()
			b, cb := Memoize(fn, Share(sh))
			defer cb.Close()
			assert.Equal(t, tc.value, a("k"), "the call gets its value either way")
			got := b("k")
			assert.True(t, same(reflect.ValueOf(tc.value), reflect.ValueOf(got), 0), "b gets an equal value: %+v", got)
			if tc.stored {
				assert.Equal(t, int64(1), runs.Load(), "b read it from the store")
				assert.Zero(t, ca.CacheInfo().StoreErrors)
			} else {
				assert.Equal(t, int64(2), runs.Load(), "not stored: b computed it")
				assert.Positive(t, ca.CacheInfo().StoreErrors, "the refusal is reported")
			}
		})
	}
}

func TestShareCodecPanicIsAnError(t *testing.T) {
	st := newMemStore()
	f, c := Memoize(func(n int) int { return n }, Share(Sharing{Store: st, Name: "p", Codec: panicCodec{}}))
	defer c.Close()
	assert.Equal(t, 7, f(7), "a codec that panics fails no call")
	assert.Equal(t, 1, c.CacheInfo().StoreErrors)
}

// panicCodec is a Codec that panics.
type panicCodec struct{}

func (panicCodec) Marshal(any) ([]byte, error) { panic("codec bug") }
func (panicCodec) Unmarshal([]byte, any) error { panic("codec bug") }

func TestShareKeysApartAsInMemory(t *testing.T) {
	type ID string
	st := newMemStore()
	sh := Sharing{Store: st, Name: "kind", Poll: time.Hour}
	kind := func(k any) string { return fmt.Sprintf("%T", k) }
	a, ca := Memoize(kind, Share(sh))
	defer ca.Close()
	b, cb := Memoize(kind, Share(sh))
	defer cb.Close()
	assert.Equal(t, "memo.ID", a(ID("a")))
	assert.Equal(t, "string", b("a"), "ID(\"a\") and \"a\" are apart in memory, so in the store too")
	// Numbers that memory merges (Typed off) are stored as one key.
	assert.Equal(t, "int", a(1))
	assert.Equal(t, "int", b(int64(1)), "1 and int64(1) share an entry in memory, and in the store")
	assert.Equal(t, 1, cb.CacheInfo().StoreHits)
}

func TestShareTimeKeys(t *testing.T) {
	st := newMemStore()
	sh := Sharing{Store: st, Name: "day", Poll: time.Hour}
	day := func(t time.Time) string { return t.Weekday().String() }
	a, ca := Memoize(day, Share(sh))
	defer ca.Close()
	b, cb := Memoize(day, Share(sh))
	defer cb.Close()
	assert.Equal(t, "Wednesday", a(t0))
	assert.Equal(t, "Wednesday", b(t0), "a time.Time key is shared by its MarshalBinary encoding")
	assert.Equal(t, 1, cb.CacheInfo().StoreHits)
	assert.Zero(t, cb.CacheInfo().StoreErrors)
}

func TestShareOwnDeletionsKeepNewValues(t *testing.T) {
	st := newMemStore()
	var runs atomic.Int64
	f, c := process(t, st, &runs) // Poll 10ms
	ctx := context.Background()
	_, err := f(ctx, 2)
	require.NoError(t, err)
	require.True(t, c.Put(2, 1000))
	c.Forget(3)
	_, err = f(ctx, 3)
	require.NoError(t, err)
	// Let the poller read both deletions: they are this process's own.
	before := st.ops.Load()
	await.Soon(t, func() bool { return st.ops.Load() >= before+3 }, "the poller read the store a few times")
	v, ok := c.Peek(2)
	assert.True(t, ok, "the value Put stays")
	assert.Equal(t, 1000, v)
	assert.True(t, c.Contains(3), "the result computed after the Forget stays")
}

func TestShareOwnClearKeepsNewValues(t *testing.T) {
	st := newMemStore()
	var blocked atomic.Bool
	inside := make(chan struct{})
	release := make(chan struct{})
	sh := Sharing{Store: st, Name: "f", Poll: time.Millisecond}
	f, c := Memoize(func(n int) int {
		switch {
		case n == 1 && blocked.CompareAndSwap(false, true):
			close(inside)
			<-release
		case n == 3:
			// Long enough for the poller to read the store a few times.
			before := st.ops.Load()
			for deadline := time.Now().Add(await.Timeout); st.ops.Load() < before+3 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		return n * n
	}, Share(sh))
	defer c.Close()
	done := make(chan struct{})
	go func() { f(1); close(done) }()
	<-inside
	c.Clear()
	assert.Equal(t, 4, f(2))
	assert.Equal(t, 9, f(3))
	close(release)
	within(t, 5*time.Second, func() { <-done })
	before := st.ops.Load()
	await.Soon(t, func() bool { return st.ops.Load() >= before+3 }, "the poller read the store a few times")

	assert.True(t, c.Contains(2), "the result computed after the Clear stays")
	assert.True(t, c.Contains(3), "the result computed after the Clear stays, however long it took")
	assert.False(t, c.Contains(1), "the execution begun before the Clear is not kept")
	st.mu.Lock()
	defer st.mu.Unlock()
	for n, want := range map[int]bool{1: false, 2: true, 3: true} {
		_, ok := st.values[[2]string{sh.Namespace(), mustKey(t, n)}]
		assert.Equal(t, want, ok, "the store holds %d: %v", n, want)
	}
}

// notifyingStore is a memStore that notifies its watchers of deletions, as
// the Redis store does through pub/sub, unless told to lose the messages.
type notifyingStore struct {
	*memStore
	wmu      sync.Mutex
	watchers map[*chan<- struct{}]string // the watchers' namespaces
	lose     atomic.Bool
}

func (n *notifyingStore) Notify(ns string, c chan<- struct{}) func() {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	key := &c
	n.watchers[key] = ns
	return func() {
		n.wmu.Lock()
		defer n.wmu.Unlock()
		delete(n.watchers, key)
	}
}

// notify tells the watchers of ns.
func (n *notifyingStore) notify(ns string) {
	if n.lose.Load() {
		return
	}
	n.wmu.Lock()
	defer n.wmu.Unlock()
	for c, wns := range n.watchers {
		if wns == ns {
			select {
			case *c <- struct{}{}:
			default:
			}
		}
	}
}

func (n *notifyingStore) Delete(ctx context.Context, ns, key string) error {
	err := n.memStore.Delete(ctx, ns, key)
	n.notify(ns)
	return err
}

func (n *notifyingStore) Clear(ctx context.Context, ns string) error {
	err := n.memStore.Clear(ctx, ns)
	n.notify(ns)
	return err
}

func TestNotifierDeletionsArriveWithoutWaitingForPoll(t *testing.T) {
	st := &notifyingStore{memStore: newMemStore(), watchers: map[*chan<- struct{}]string{}}
	var runs atomic.Int64
	open := func(poll time.Duration) (func(int) int, *Cache[int, int]) {
		f, c := Memoize(func(n int) int { runs.Add(1); return n * n },
			Share(Sharing{Store: st, Name: "square", Poll: poll}))
		t.Cleanup(c.Close)
		return f, c
	}
	a, ca := open(time.Hour)
	b, cb := open(time.Hour)
	a(3)
	b(3)
	a(4)
	b(4)
	require.True(t, cb.Contains(3))
	await.Soon(t, func() bool { st.wmu.Lock(); defer st.wmu.Unlock(); return len(st.watchers) == 2 }, "both pollers watch")

	ca.Forget(3)
	await.Soon(t, func() bool { return !cb.Contains(3) }, "b drops 3 when notified, long before its Poll (1h)")
	assert.True(t, cb.Contains(4))
	ca.Clear()
	await.Soon(t, func() bool { return cb.Len() == 0 }, "b empties its memory when notified of a's Clear")

	// Lost notifications: the poll still reads the deletions.
	st.lose.Store(true)
	c, cc := open(20 * time.Millisecond)
	d, cd := open(20 * time.Millisecond)
	c(5)
	d(5)
	require.True(t, cd.Contains(5))
	cc.Forget(5)
	await.Soon(t, func() bool { return !cd.Contains(5) }, "d drops 5 within its Poll, with the notification lost")

	ca.Close()
	cb.Close()
	cc.Close()
	cd.Close()
	st.wmu.Lock()
	defer st.wmu.Unlock()
	assert.Empty(t, st.watchers, "Close stops the notifications")
}
