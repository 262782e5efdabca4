package redisstore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/internal/await"
	"github.com/gomemo/memo/internal/holdtest"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The test binary doubles as the program of the multi-process tests: with
// MEMO_REDIS_CHILD set, it runs that role instead of the tests.
func TestMain(m *testing.M) {
	if role := os.Getenv("MEMO_REDIS_CHILD"); role != "" {
		child(role, os.Getenv("MEMO_REDIS_ADDR"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// timeout bounds what a test waits for.
const timeout = 10 * time.Second

// expected is what the memoized function of these tests returns for k.
func expected(k int) string { return fmt.Sprintf("value of %d: %x", k, uint64(k)*0x9E3779B97F4A7C15) }

// sharing is how the caches of these tests share through st.
func sharing(st memo.Store) memo.Sharing {
	return memo.Sharing{Store: st, Name: "expected", Poll: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Lease: time.Second}
}

// memoized builds the memoized function of these tests on st, counting its
// executions in runs. A Share among opts replaces sharing(st).
func memoized(t testing.TB, st memo.Store, runs *atomic.Int64, opts ...memo.Option) (func(int) string, *memo.Cache[int, string]) {
	f, c := memo.Memoize(func(k int) string {
		runs.Add(1)
		return expected(k)
	}, append([]memo.Option{memo.Share(sharing(st))}, opts...)...)
	if t != nil {
		t.Cleanup(c.Close)
	}
	return f, c
}

// newStore returns a store on client, failing the test on error.
func newStore(t *testing.T, client redis.UniversalClient) *Store {
	t.Helper()
	st, err := New(client, Options{})
	require.NoError(t, err)
	return st
}

// values returns the pattern of the Redis keys of ns's values, in the
// default layout.
func values(ns string) string { return "memo:{" + ns + "#64.*}:v:*" }

// report is what a child prints when it is done.
type report struct {
	Runs  int64
	Wrong int
	Info  memo.CacheInfo
}

// child runs one process of a multi-process test on the Redis at addr.
func child(role, addr string) {
	// One address is a server, several a Cluster.
	client := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(addr, ","), ContextTimeoutEnabled: true})
	defer client.Close()
	st, err := New(client, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	switch role {
	case "hold":
		holdtest.Holder(st)
		return
	case "load":
		loadChild(st)
		return
	case "watch":
		holdtest.Watcher(st)
		return
	}
	n, _ := strconv.Atoi(os.Getenv("MEMO_REDIS_KEYS"))
	var runs atomic.Int64
	sh := memo.Sharing{Store: st, Name: "expected", Poll: 20 * time.Millisecond}
	f, c := memo.Memoize(func(k int) string {
		runs.Add(1)
		time.Sleep(time.Millisecond)
		return expected(k)
	}, memo.Share(sh), memo.MaxSize(n))
	defer c.Close()
	r := report{}
	for _, k := range rand.Perm(n) {
		if f(k) != expected(k) {
			r.Wrong++
		}
	}
	switch role {
	case "share":
		r.Runs, r.Info = runs.Load(), c.CacheInfo()
		json.NewEncoder(os.Stdout).Encode(r)
	case "clear":
		// Holds every key, then reports how long after the parent's word
		// its memory is empty: another process's Clear reaching it.
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		start := time.Now()
		for c.CacheInfo().CurrSize != 0 && time.Since(start) < timeout {
			time.Sleep(time.Millisecond)
		}
		fmt.Println(time.Since(start).Milliseconds(), c.CacheInfo().CurrSize)
	}
}

func TestSharedBetweenClients(t *testing.T) {
	srv := redistest.Start(t)
	var runsA, runsB atomic.Int64
	a, ca := memoized(t, newStore(t, srv.Client(t)), &runsA)
	b, cb := memoized(t, newStore(t, srv.Client(t)), &runsB)
	for k := range 10 {
		assert.Equal(t, expected(k), a(k))
		assert.Equal(t, expected(k), b(k))
	}
	assert.Equal(t, int64(10), runsA.Load())
	assert.Equal(t, int64(0), runsB.Load(), "b found every key in Redis")
	assert.Equal(t, 10, cb.CacheInfo().StoreHits)

	start := time.Now()
	ca.Forget(3)
	await.Soon(t, func() bool { return cb.CacheInfo().CurrSize == 9 }, "b drops 3 after a's Forget")
	t.Logf("another client's Forget seen after %v (Poll 20ms)", time.Since(start))
	assert.Equal(t, expected(3), b(3))
	assert.Equal(t, int64(1), runsB.Load(), "3 was deleted from Redis too")

	start = time.Now()
	ca.Clear()
	await.Soon(t, func() bool { return cb.CacheInfo().CurrSize == 0 }, "b drops everything after a's Clear")
	t.Logf("another client's Clear seen after %v (Poll 20ms)", time.Since(start))
	assert.Equal(t, expected(4), b(4))
	assert.Equal(t, int64(2), runsB.Load(), "Redis was cleared too")
	n, err := srv.Client(t).Keys(context.Background(), values("expected/0")).Result()
	require.NoError(t, err)
	assert.Len(t, n, 1, "Clear deleted the old values; only 4, stored since, is left")
}

func TestRefusesClientWithoutContextTimeouts(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err := New(c, Options{})
	assert.ErrorContains(t, err, "ContextTimeoutEnabled")
	_, err = New(nil, Options{})
	assert.ErrorContains(t, err, "memo/redisstore")
}

func TestServerDownAtStartThenUp(t *testing.T) {
	port := redistest.FreePort(t)
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	var runs atomic.Int64
	f, c := memoized(t, newStore(t, client), &runs)
	for k := range 5 {
		require.Equal(t, expected(k), f(k), "Redis down never fails a call")
	}
	assert.Positive(t, c.CacheInfo().StoreErrors)
	assert.Equal(t, int64(5), runs.Load())

	redistest.StartAt(t, port)
	k := 100
	await.Soon(t, func() bool { k++; f(k); return c.CacheInfo().StoreMisses > 0 }, "Redis is used once it is up")
}

func TestServerKilledAndRestarted(t *testing.T) {
	srv := redistest.Start(t)
	var runs atomic.Int64
	f, c := memoized(t, newStore(t, srv.Client(t)), &runs, memo.MaxSize(1))
	f(1)
	srv.Kill()
	for k := range 20 {
		require.Equal(t, expected(k), f(k), "a dead Redis never fails a call")
	}
	errs := c.CacheInfo().StoreErrors
	assert.Positive(t, errs)
	assert.Less(t, errs, 10, "a dead server is not hammered: 20 executions")
	srv.Restart()
	k := 100
	await.Soon(t, func() bool {
		before := c.CacheInfo().StoreMisses
		k++
		f(k)
		return c.CacheInfo().StoreMisses > before
	}, "Redis is used again once it is back")
}

func TestServerPaused(t *testing.T) {
	srv := redistest.Start(t)
	var runs atomic.Int64
	f, c := memoized(t, newStore(t, srv.Client(t)), &runs)
	f(0)
	srv.Pause()
	defer srv.Resume()
	for k := 1; k < 4; k++ {
		start := time.Now()
		require.Equal(t, expected(k), f(k))
		assert.Less(t, time.Since(start), 2*time.Second, "Timeout (200ms) bounds how long a paused Redis holds a call")
	}
	assert.Positive(t, c.CacheInfo().StoreErrors)
}

func TestCorruptBytesUnderAKey(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	ctx := context.Background()
	var runs atomic.Int64
	f, c := memoized(t, newStore(t, rc), &runs, memo.MaxSize(1))
	f(1)
	keys, err := rc.Keys(ctx, values("expected/0")).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	for _, bad := range []string{"0:garbage", "garbage without a generation", "0:", ""} {
		require.NoError(t, rc.Set(ctx, keys[0], bad, 0).Err())
		f(2) // push 1 out of memory
		require.Equal(t, expected(1), f(1), "corrupt bytes %q are a miss", bad)
		v, err := rc.Get(ctx, keys[0]).Result()
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(v, "0:m"), "the value was overwritten with a good one")
	}
	assert.Equal(t, int64(6), runs.Load())
	assert.Equal(t, 2, c.CacheInfo().StoreErrors, "damaged frames are reported; bytes of another generation or none are plain misses")
}

func TestLargeValuesAreNotSent(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	st := newStore(t, rc)
	f, c := memo.Memoize(func(n int) string { return strings.Repeat("x", n) },
		memo.Share(memo.Sharing{Store: st, Name: "big", MaxValue: 1000}))
	defer c.Close()
	f(10)
	f(5000)
	keys, err := rc.Keys(context.Background(), values("big/0")).Result()
	require.NoError(t, err)
	assert.Len(t, keys, 1, "only the small value was sent")
	assert.Equal(t, 1, c.CacheInfo().StoreErrors)
}

func TestNothingForTheWrongFunctionOrType(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv.Client(t))
	double, c1 := memo.Memoize(func(n int) int { return 2 * n }, memo.Share(memo.Sharing{Store: st, Name: "double"}))
	defer c1.Close()
	triple, c2 := memo.Memoize(func(n int) int { return 3 * n }, memo.Share(memo.Sharing{Store: st, Name: "triple"}))
	defer c2.Close()
	assert.Equal(t, 10, double(5))
	assert.Equal(t, 15, triple(5), "another Name is another function")
	doubleV2, c3 := memo.Memoize(func(n int) int { return 2*n + 1 }, memo.Share(memo.Sharing{Store: st, Name: "double", Version: 2}))
	defer c3.Close()
	assert.Equal(t, 11, doubleV2(5), "another Version drops the old results")
	asText, c4 := memo.Memoize(func(n int) string { return strconv.Itoa(2 * n) }, memo.Share(memo.Sharing{Store: st, Name: "double"}))
	defer c4.Close()
	assert.Equal(t, "10", asText(5), "a value of another type is not decoded")
	assert.Zero(t, c4.CacheInfo().StoreHits)
}

func TestExpiryCarried(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	var runs atomic.Int64
	f, _ := memoized(t, newStore(t, rc), &runs, memo.TTL(time.Minute))
	f(1)
	keys, err := rc.Keys(context.Background(), values("expected/0")).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	ttl, err := rc.PTTL(context.Background(), keys[0]).Result()
	require.NoError(t, err)
	assert.InDelta(t, time.Minute.Seconds(), ttl.Seconds(), 2, "the TTL is carried into Redis")
}

func TestWindowEndsAtTheSameInstantEverywhere(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	var runs atomic.Int64
	f, _ := memoized(t, newStore(t, rc), &runs, memo.Window(time.Hour))
	before := time.Now().Truncate(time.Hour).Add(time.Hour)
	f(1)
	after := time.Now().Truncate(time.Hour).Add(time.Hour)
	keys, err := rc.Keys(context.Background(), values("expected/0")).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	at, err := rc.PExpireTime(context.Background(), keys[0]).Result()
	require.NoError(t, err)
	assert.Contains(t, []int64{before.UnixMilli(), after.UnixMilli()}, int64(at/time.Millisecond),
		"the value expires in Redis at the end of the wall-clock hour, as in every process's memory")
}

func TestProcessesShareOneExecutionPerKey(t *testing.T) {
	srv := redistest.Start(t)
	const procs, keys = 4, 200
	var cmds []*exec.Cmd
	var outs []*bufio.Scanner
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "MEMO_REDIS_CHILD=share", "MEMO_REDIS_ADDR="+srv.Addr(), "MEMO_REDIS_KEYS="+strconv.Itoa(keys))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
		outs = append(outs, bufio.NewScanner(out))
	}
	var total int64
	for i, cmd := range cmds {
		require.True(t, outs[i].Scan(), "process %d reported nothing", i)
		var r report
		require.NoError(t, json.Unmarshal(outs[i].Bytes(), &r))
		require.NoError(t, cmd.Wait())
		t.Logf("process %d: %d executions, store hits %d, waits %d, errors %d", i, r.Runs, r.Info.StoreHits, r.Info.StoreWaits, r.Info.StoreErrors)
		assert.Zero(t, r.Wrong)
		assert.Zero(t, r.Info.StoreErrors)
		assert.Equal(t, keys, r.Info.Misses)
		total += r.Runs
	}
	t.Logf("%d processes, %d keys, %d calls: %d executions in all", procs, keys, procs*keys, total)
	assert.Equal(t, int64(keys), total, "each key computed once across the processes")

	// A Clear here reaches another process.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MEMO_REDIS_CHILD=clear", "MEMO_REDIS_ADDR="+srv.Addr(), "MEMO_REDIS_KEYS="+strconv.Itoa(keys))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	outPipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	out := bufio.NewScanner(outPipe)
	require.True(t, out.Scan())
	require.Equal(t, "ready", out.Text())
	var runs atomic.Int64
	_, c := memoized(t, newStore(t, srv.Client(t)), &runs)
	c.Clear()
	fmt.Fprintln(in, "cleared")
	require.True(t, out.Scan())
	var ms, left int
	_, err = fmt.Sscan(out.Text(), &ms, &left)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait())
	t.Logf("another process's Clear reached the watcher after %d ms (Poll 20ms)", ms)
	assert.Zero(t, left, "the watcher's memory was emptied")
}

func TestCluster(t *testing.T) {
	cl := startCluster(t)
	// When a slot changes hands, its new owner saves the cluster's
	// configuration to disk, with an fsync, and answers nothing meanwhile.
	// Past the Timeout, a store operation fails and pauses the store, so
	// that the reads right after the moves would compute instead: this test
	// gives its stores a Timeout that a slow disk does not reach, and
	// reports every failure.
	cache := func(name string, runs *atomic.Int64) (func(int) string, *memo.Cache[int, string]) {
		sh := sharing(newStore(t, cl.client(t)))
		sh.Timeout = 5 * time.Second
		return memoized(t, sh.Store, runs, memo.MaxSize(1), memo.Share(sh), memo.Observe(func(e memo.Event[int, string]) {
			if e.Kind == memo.StoreFailed {
				t.Errorf("%s's store failed about key %d: %v", name, e.Key, e.Err)
			}
		}))
	}
	var runsA, runsB atomic.Int64
	a, cacheA := cache("a", &runsA)
	b, cacheB := cache("b", &runsB)
	for k := range 20 {
		require.Equal(t, expected(k), a(k))
	}
	for k := range 20 {
		require.Equal(t, expected(k), b(k))
	}
	assert.Zero(t, runsB.Load(), "b found every key in the cluster")

	// Move the slots of the namespace's values to other masters: the
	// clients follow the MOVED replies.
	slots := cl.slotsOf(t, values("expected/0"))
	require.Greater(t, len(slots), 5, "20 values fall in many groups")
	for slot := range slots {
		from := cl.owner(t, slot)
		to := cl.nodes[0]
		if to == from {
			to = cl.nodes[1]
		}
		cl.moveSlot(t, slot, from, to)
		require.Equal(t, to, cl.owner(t, slot))
	}
	for k := range 20 {
		require.Equal(t, expected(k), b(k))
	}
	assert.Zero(t, runsB.Load(), "every key moved with its slot")
	require.Equal(t, expected(99), a(99))
	require.Equal(t, expected(99), b(99))
	assert.Equal(t, int64(0), runsB.Load(), "a's new result reached b through the new master")
	assert.Zero(t, cacheA.CacheInfo().StoreErrors)
	assert.Zero(t, cacheB.CacheInfo().StoreErrors)
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	var runs atomic.Int64
	f, c := memoized(nil, newStore(t, client), &runs)
	f(1)
	c.Close()
	require.NoError(t, client.Close())
	goleak.VerifyNone(t)
}

func TestClearKeepsWhatComesAfter(t *testing.T) {
	const poll, slow = 20 * time.Millisecond, 9
	srv := redistest.Start(t)
	var runsA, runsB atomic.Int64
	sh := memo.Sharing{Store: newStore(t, srv.Client(t)), Name: "expected", Poll: poll}
	a, ca := memo.Memoize(func(k int) string {
		runsA.Add(1)
		if k == slow {
			time.Sleep(5 * poll) // the poller reads the store meanwhile
		}
		return expected(k)
	}, memo.Share(sh))
	t.Cleanup(ca.Close)
	b, cb := memoized(t, newStore(t, srv.Client(t)), &runsB)
	for k := range 3 {
		a(k)
		b(k)
	}
	require.Equal(t, int64(0), runsB.Load())

	ca.Clear()
	assert.Equal(t, expected(0), a(0))
	assert.Equal(t, expected(slow), a(slow))
	require.Equal(t, int64(5), runsA.Load())
	await.Soon(t, func() bool { return cb.CacheInfo().CurrSize == 0 }, "b drops what it held before a's Clear")
	assert.Equal(t, expected(3), b(3))
	require.Equal(t, int64(1), runsB.Load())

	time.Sleep(10 * poll) // both pollers read a's Clear, or would
	assert.True(t, ca.Contains(0), "a keeps what it computed after its own Clear")
	assert.True(t, ca.Contains(slow), "a keeps what it computed after its own Clear, however long it took")
	assert.Equal(t, 2, ca.CacheInfo().CurrSize)
	assert.True(t, cb.Contains(3), "b keeps what it computed after a's Clear reached it")
	assert.Equal(t, expected(0), b(0))
	assert.Equal(t, expected(slow), b(slow))
	assert.Equal(t, int64(1), runsB.Load(), "a stored what it computed after its Clear")
	assert.Equal(t, expected(3), a(3))
	assert.Equal(t, int64(5), runsA.Load(), "b stored what it computed after a's Clear")
}

// roundTrips counts a client's pipelines that read values.
type roundTrips struct{ pipelines atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "pexpiretime" }) {
			r.pipelines.Add(1) // a read, not a connection's set-up
		}
		return next(ctx, cmds)
	}
}

// batchMemoized memoizes a batch function of expected on st, counting the
// keys it computes in runs.
func batchMemoized(t *testing.T, st memo.Store, runs *atomic.Int64) (*memo.Batch[int, string], *memo.Cache[int, string]) {
	b, c := memo.MemoizeBatch(func(_ context.Context, keys []int) (map[int]string, error) {
		runs.Add(int64(len(keys)))
		m := map[int]string{}
		for _, k := range keys {
			m[k] = expected(k)
		}
		return m, nil
	}, memo.Share(memo.Sharing{Store: st, Name: "expected", Poll: time.Hour, Timeout: 5 * time.Second}))
	t.Cleanup(c.Close)
	return b, c
}

// TestGetBatch: GetBatch answers as Get does, key by key, in one round
// trip; a batch call reads what another client computed, with one pipeline,
// and computes only the rest.
func TestGetBatch(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	var runs atomic.Int64
	f, _ := memoized(t, newStore(t, srv.Client(t)), &runs)
	for k := range 10 {
		f(k)
	}
	ns := "expected/0"
	key := func(k int) string {
		s, err := memo.TypedKeyOf(k)
		require.NoError(t, err)
		return s
	}
	rc := srv.Client(t)
	trips := &roundTrips{}
	rc.AddHook(trips)
	st := newStore(t, rc)
	keys := []string{key(3), key(99), key(0), key(3)}
	got, err := st.GetBatch(ctx, ns, keys)
	require.NoError(t, err)
	require.Len(t, got, 4)
	for i, k := range keys {
		v, exp, found, err := st.Get(ctx, ns, k)
		require.NoError(t, err)
		assert.Equal(t, memo.Lookup{Value: v, Expires: exp, Found: found}, got[i], "lookup %d", i)
	}
	assert.True(t, got[0].Found)
	assert.False(t, got[1].Found)
	assert.Equal(t, int64(1+len(keys)), trips.pipelines.Load(), "one pipeline for the batch, one per Get")

	trips.pipelines.Store(0)
	var batchRuns atomic.Int64
	b, c := batchMemoized(t, st, &batchRuns)
	want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	values, err := b.Get(ctx, want)
	require.NoError(t, err)
	for _, k := range want {
		assert.Equal(t, expected(k), values[k])
	}
	assert.Equal(t, int64(2), batchRuns.Load(), "only 10 and 11 computed")
	assert.Equal(t, int64(2), trips.pipelines.Load(), "the twelve looked up in one round trip, the two leased looked up again in one")
	assert.Equal(t, 10, c.CacheInfo().StoreHits)
	assert.Equal(t, 2, c.CacheInfo().StoreMisses)

	srv.Kill()
	values, err = b.Get(ctx, []int{20, 21})
	require.NoError(t, err, "a store that is down never fails a batch")
	assert.Equal(t, expected(21), values[21])
	assert.Positive(t, c.CacheInfo().StoreErrors)
}

// TestGetBatchOnCluster: a batch call on a cluster reads every key another
// client wrote, with no error.
func TestGetBatchOnCluster(t *testing.T) {
	cl := startCluster(t)
	var runs, batchRuns atomic.Int64
	a, _ := memoized(t, newStore(t, cl.client(t)), &runs)
	for k := range 30 {
		a(k)
	}
	b, c := batchMemoized(t, newStore(t, cl.client(t)), &batchRuns)
	keys := make([]int, 40)
	for i := range keys {
		keys[i] = i
	}
	got, err := b.Get(context.Background(), keys)
	require.NoError(t, err)
	for _, k := range keys {
		assert.Equal(t, expected(k), got[k])
	}
	assert.Equal(t, int64(10), batchRuns.Load())
	assert.Equal(t, 30, c.CacheInfo().StoreHits)
	assert.Zero(t, c.CacheInfo().StoreErrors)
}

func TestValueLongerThanMaxValueLeftUnread(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	st := newStore(t, rc)
	big, cb := memo.Memoize(func(int) string { return strings.Repeat("x", 100000) }, memo.Share(memo.Sharing{Store: st, Name: "expected"}))
	big(1)
	cb.Close()

	var runs atomic.Int64
	var failures []error
	f, c := memo.Memoize(func(k int) string { runs.Add(1); return expected(k) },
		memo.Share(memo.Sharing{Store: st, Name: "expected", MaxValue: 1000}),
		memo.Observe(func(e memo.Event[int, string]) {
			if e.Kind == memo.StoreFailed {
				failures = append(failures, e.Err)
			}
		}))
	defer c.Close()
	sent := func() int64 {
		info, err := rc.Info(context.Background(), "stats").Result()
		require.NoError(t, err)
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_net_output_bytes:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				require.NoError(t, err)
				return n
			}
		}
		t.Fatal("no total_net_output_bytes in INFO stats")
		return 0
	}
	before := sent()
	assert.Equal(t, expected(1), f(1))
	assert.Less(t, sent()-before, int64(20000), "the server sent a fraction of the 100 kB value")
	assert.Equal(t, int64(1), runs.Load())
	require.Len(t, failures, 1)
	assert.ErrorIs(t, failures[0], memo.ErrValueTooLarge, "refused by the store, which did not fetch it")
}
