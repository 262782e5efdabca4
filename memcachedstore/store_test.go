package memcachedstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gomemo/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expected is what the memoized function of these tests returns for k.
func expected(k int) string { return fmt.Sprintf("value of %d: %x", k, uint64(k)*0x9E3779B97F4A7C15) }

// newStore returns a store on a client of servers, failing the test on error.
func newStore(t *testing.T, servers ...*server) *Store {
	t.Helper()
	st, err := New(client(t, servers...), Options{})
	require.NoError(t, err)
	return st
}

func TestBadOptions(t *testing.T) {
	_, err := New(nil, Options{})
	assert.ErrorContains(t, err, "memo/memcachedstore: the client is nil")
	c := memcache.New("127.0.0.1:1")
	_, err = New(c, Options{KeepChanges: -1})
	assert.ErrorContains(t, err, "memo/memcachedstore: KeepChanges")
	_, err = New(c, Options{Prefix: "with space"})
	assert.ErrorContains(t, err, `memo/memcachedstore: the Prefix "with space"`)
	_, err = New(c, Options{Prefix: strings.Repeat("p", 101)})
	assert.ErrorContains(t, err, "at most 100 bytes")
}

func TestSharedBetweenClients(t *testing.T) {
	srv := startServer(t)
	var runsA, runsB atomic.Int64
	sh := func(st memo.Store) memo.Sharing {
		return memo.Sharing{Store: st, Name: "expected", Poll: 20 * time.Millisecond}
	}
	a, ca := memo.Memoize(func(k int) string { runsA.Add(1); return expected(k) }, memo.Share(sh(newStore(t, srv))))
	defer ca.Close()
	b, cb := memo.Memoize(func(k int) string { runsB.Add(1); return expected(k) }, memo.Share(sh(newStore(t, srv))))
	defer cb.Close()
	for k := range 10 {
		require.Equal(t, expected(k), a(k))
		require.Equal(t, expected(k), b(k))
	}
	assert.Equal(t, int64(10), runsA.Load())
	assert.Zero(t, runsB.Load(), "b found every key in memcached")
	ca.Forget(3)
	require.Eventually(t, func() bool { return !cb.Contains(3) }, 10*time.Second, time.Millisecond, "b drops 3 after a's Forget")
	assert.True(t, cb.Contains(4))
	ca.Clear()
	require.Eventually(t, func() bool { return cb.CacheInfo().CurrSize == 0 }, 10*time.Second, time.Millisecond, "b drops everything after a's Clear")
	assert.Equal(t, expected(4), b(4))
	assert.Equal(t, int64(1), runsB.Load(), "memcached was cleared too")
}

// flood writes n items of about the size of a recorded deletion to srv,
// without waiting for answers, then waits until srv has read them all.
func flood(t *testing.T, srv *server, n int) {
	conn, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err)
	defer conn.Close()
	w := bufio.NewWriterSize(conn, 1<<16)
	pad := strings.Repeat("f", 60)
	for i := range n {
		fmt.Fprintf(w, "set flood:%s:%d 0 0 8 noreply\r\nfloodval\r\n", pad, i)
	}
	fmt.Fprintf(w, "version\r\n")
	require.NoError(t, w.Flush())
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "VERSION"), "memcached answered %q", line)
}

// Memcached evicts the record of deletions, for real, under memory pressure:
// Changes then reports all, never a list that misses a deletion.
func TestEvictedDeletionsReadAsAll(t *testing.T) {
	srv := startServer(t, "-m", "8")
	st := newStore(t, srv)
	ctx := context.Background()
	_, _, cursor, err := st.Changes(ctx, "ns", 0)
	require.NoError(t, err)
	for i := range 20 {
		require.NoError(t, st.Delete(ctx, "ns", fmt.Sprint("key ", i)))
	}
	keys, all, _, err := st.Changes(ctx, "ns", cursor)
	require.NoError(t, err)
	require.False(t, all)
	require.Len(t, keys, 20, "before the flood, every deletion is listed")

	flood(t, srv, 400_000) // some 50 MB through 8 MB
	_, err = st.client.Get(st.deletion("ns", cursor))
	require.ErrorIs(t, err, memcache.ErrCacheMiss, "the flood evicted the first deletion")
	keys, all, _, err = st.Changes(ctx, "ns", cursor)
	require.NoError(t, err)
	assert.True(t, all, "evicted deletions read as all, not as the list %q", keys)
}

// A deletion whose record is gone, while later ones are there, reads as all.
func TestOneDeletionLost(t *testing.T) {
	st := newStore(t, startServer(t))
	ctx := context.Background()
	_, _, cursor, err := st.Changes(ctx, "ns", 0)
	require.NoError(t, err)
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, st.Delete(ctx, "ns", k))
	}
	require.NoError(t, st.client.Delete(st.deletion("ns", cursor+1)))
	keys, all, _, err := st.Changes(ctx, "ns", cursor)
	require.NoError(t, err)
	assert.True(t, all, "a lost deletion reads as all, not as the list %q", keys)
}

// A reader further behind than KeepChanges reads all.
func TestFarBehindReadsAll(t *testing.T) {
	st, err := New(client(t, startServer(t)), Options{KeepChanges: 5})
	require.NoError(t, err)
	ctx := context.Background()
	_, _, cursor, err := st.Changes(ctx, "ns", 0)
	require.NoError(t, err)
	for i := range 5 {
		require.NoError(t, st.Delete(ctx, "ns", fmt.Sprint(i)))
	}
	keys, all, next, err := st.Changes(ctx, "ns", cursor)
	require.NoError(t, err)
	require.False(t, all)
	require.Len(t, keys, 5)
	for i := range 6 {
		require.NoError(t, st.Delete(ctx, "ns", fmt.Sprint(i)))
	}
	_, all, _, err = st.Changes(ctx, "ns", next)
	require.NoError(t, err)
	assert.True(t, all)
}

// A cleared namespace's generation evicted, its old values never come back.
func TestLostGenerationServesNoClearedValue(t *testing.T) {
	st := newStore(t, startServer(t))
	ctx := context.Background()
	require.NoError(t, st.Set(ctx, "ns", "k", []byte("before"), time.Time{}))
	require.NoError(t, st.Clear(ctx, "ns"))
	require.NoError(t, st.client.Delete(st.gen("ns")))
	_, _, found, err := st.Get(ctx, "ns", "k")
	require.NoError(t, err)
	assert.False(t, found)
	require.NoError(t, st.Set(ctx, "ns", "other", []byte("v"), time.Time{}))
	_, _, found, err = st.Get(ctx, "ns", "k")
	require.NoError(t, err)
	assert.False(t, found, "a new generation is no old one")
}

// Three servers under one memoized function, called by two processes'
// caches from many goroutines: one server is killed (SIGKILL) and another
// paused (SIGSTOP) mid-run, from outside. Every call gets the right value,
// never an error, within a bound the store's Timeout sets.
func TestServerKilledAndPaused(t *testing.T) {
	servers := []*server{startServer(t), startServer(t), startServer(t)}
	const keys, goroutines = 200, 4
	var runs atomic.Int64
	cache := func() (func(context.Context, int) (string, error), *memo.Cache[int, string]) {
		c := client(t, servers...)
		c.Timeout = 100 * time.Millisecond
		st, err := New(c, Options{})
		require.NoError(t, err)
		sh := memo.Sharing{Store: st, Name: "faults", Poll: 20 * time.Millisecond, Timeout: 300 * time.Millisecond, Lease: time.Second}
		f, cache := memo.MemoizeCtx(func(_ context.Context, k int) (string, error) {
			runs.Add(1)
			return expected(k), nil
		}, memo.Share(sh), memo.MaxSize(16))
		t.Cleanup(cache.Close)
		return f, cache
	}
	fa, ca := cache()
	fb, cb := cache()

	var calls, wrong, failures atomic.Int64
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		f := fa
		if g%2 == 1 {
			f = fb
		}
		wg.Go(func() {
			for i := g; ; i += 7 {
				select {
				case <-stop:
					return
				default:
				}
				k := i % keys
				start := time.Now()
				v, err := f(context.Background(), k)
				took := time.Since(start)
				for old := slowest.Load(); int64(took) > old && !slowest.CompareAndSwap(old, int64(took)); old = slowest.Load() {
				}
				calls.Add(1)
				switch {
				case err != nil:
					failures.Add(1)
				case v != expected(k):
					wrong.Add(1)
				}
			}
		})
	}
	phase := func(name string, d time.Duration) {
		before := calls.Load()
		hits := ca.CacheInfo().StoreHits + cb.CacheInfo().StoreHits
		errs := ca.CacheInfo().StoreErrors + cb.CacheInfo().StoreErrors
		time.Sleep(d)
		t.Logf("%-28s %6d calls, store hits %5d, store errors %4d", name, calls.Load()-before,
			ca.CacheInfo().StoreHits+cb.CacheInfo().StoreHits-hits, ca.CacheInfo().StoreErrors+cb.CacheInfo().StoreErrors-errs)
	}
	phase("three servers", 500*time.Millisecond)
	servers[0].signal(t, syscall.SIGKILL)
	phase("one killed", time.Second)
	servers[1].signal(t, syscall.SIGSTOP)
	phase("one killed, one paused", time.Second)
	servers[1].signal(t, syscall.SIGCONT)
	phase("one killed, one resumed", time.Second)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the callers had not returned 30s after the end")
	}
	t.Logf("%d calls, %d executions, %d wrong values, %d errors, slowest call %v", calls.Load(), runs.Load(), wrong.Load(), failures.Load(), time.Duration(slowest.Load()))
	assert.Zero(t, wrong.Load(), "a wrong value")
	assert.Zero(t, failures.Load(), "a call that failed")
	assert.Positive(t, ca.CacheInfo().StoreErrors+cb.CacheInfo().StoreErrors, "the faults were seen")
	assert.Positive(t, ca.CacheInfo().StoreHits+cb.CacheInfo().StoreHits, "the store was used")
	assert.Less(t, time.Duration(slowest.Load()), 5*time.Second, "Timeout (300ms) bounds how long a dead or paused server holds a call")
}

// The errors of a dead server are the store's, named so.
func TestDeadServerErrors(t *testing.T) {
	srv := startServer(t)
	st := newStore(t, srv)
	srv.kill()
	_, _, _, err := st.Get(context.Background(), "ns", "k")
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "memo/memcachedstore: "), err.Error())
	assert.False(t, errors.Is(err, memcache.ErrCacheMiss))
}
