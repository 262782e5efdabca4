package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/internal/await"
	"github.com/gomemo/memo/internal/holdtest"
	"github.com/gomemo/memo/internal/trace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The test binary doubles as the program of the multi-process tests: with
// MEMO_SQLITE_CHILD set, it runs that role instead of the tests.
func TestMain(m *testing.M) {
	if role := os.Getenv("MEMO_SQLITE_CHILD"); role != "" {
		child(role, os.Args[len(os.Args)-1])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// expected is what the memoized function of these tests returns for k: long
// enough to span pages, and different for every k.
func expected(k int) string {
	return strings.Repeat(fmt.Sprintf("%d:%x;", k, uint64(k)*0x9E3779B97F4A7C15), 1+k%50)
}

// memoized builds the memoized function of these tests on st, counting its
// executions in runs.
func memoized(st memo.Store, runs *atomic.Int64, opts ...memo.Option) (func(int) string, *memo.Cache[int, string]) {
	// A short lease: a killed writer's lease holds its key up for no longer.
	sh := memo.Sharing{Store: st, Name: "expected", Poll: 20 * time.Millisecond, Lease: 200 * time.Millisecond}
	return memo.Memoize(func(k int) string {
		runs.Add(1)
		return expected(k)
	}, append([]memo.Option{memo.Share(sh)}, opts...)...)
}

// report is what a child prints when it is done.
type report struct {
	Runs  int64
	Wrong int
	Info  memo.CacheInfo
}

// child runs one process of a multi-process test on the store in dir.
func child(role, dir string) {
	st, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer st.Close()
	var runs atomic.Int64
	switch role {
	case "open":
		fmt.Println("opened")
	case "hold":
		holdtest.Holder(st)
	case "share":
		// Every key of 0..n-1, in an order of this process's own, with a
		// function slow enough for the processes to overlap.
		n, _ := strconv.Atoi(os.Getenv("MEMO_SQLITE_KEYS"))
		sh := memo.Sharing{Store: st, Name: "expected"}
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
		r.Runs, r.Info = runs.Load(), c.CacheInfo()
		json.NewEncoder(os.Stdout).Encode(r)
	case "batch":
		// Keys from MEMO_SQLITE_FROM (0 if unset) up, n of them, in one
		// batch call. With MEMO_SQLITE_HOLD set, each call of the batch
		// function prints "entered" and waits for a line on stdin.
		n, _ := strconv.Atoi(os.Getenv("MEMO_SQLITE_KEYS"))
		from, _ := strconv.Atoi(os.Getenv("MEMO_SQLITE_FROM"))
		hold := os.Getenv("MEMO_SQLITE_HOLD") != ""
		in := bufio.NewScanner(os.Stdin)
		b, c := memo.MemoizeBatch(func(_ context.Context, keys []int) (map[int]string, error) {
			runs.Add(int64(len(keys)))
			if hold {
				fmt.Println("entered")
				in.Scan()
			}
			m := map[int]string{}
			for _, k := range keys {
				m[k] = expected(k)
			}
			return m, nil
		}, memo.Share(memo.Sharing{Store: st, Name: "expected", Timeout: 10 * time.Second}), memo.Observe(func(e memo.Event[int, string]) {
			if e.Kind == memo.StoreFailed {
				fmt.Fprintln(os.Stderr, "store failed:", e.Err)
			}
		}))
		defer c.Close()
		keys := make([]int, n)
		for i := range keys {
			keys[i] = from + i
		}
		got, err := b.Get(context.Background(), keys)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		r := report{}
		for _, k := range keys {
			if got[k] != expected(k) {
				r.Wrong++
			}
		}
		r.Runs, r.Info = runs.Load(), c.CacheInfo()
		json.NewEncoder(os.Stdout).Encode(r)
	case "watch":
		holdtest.Watcher(st)
	case "write":
		// Writes keys from MEMO_SQLITE_FROM up, announcing each, until
		// killed.
		from, _ := strconv.Atoi(os.Getenv("MEMO_SQLITE_FROM"))
		f, c := memoized(st, &runs, memo.MaxSize(1))
		defer c.Close()
		out := bufio.NewWriter(os.Stdout)
		for k := from; ; k++ {
			f(k)
			fmt.Fprintln(out, k)
			out.Flush()
		}
	}
}

// start starts a child process in role on dir.
func start(t *testing.T, role, dir string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", dir)
	cmd.Env = append(append(os.Environ(), "MEMO_SQLITE_CHILD="+role), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	return cmd, bufio.NewScanner(out)
}

// open opens a store in dir, closed at the end of the test.
func open(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	st, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func TestResultsSurviveARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	var runs atomic.Int64
	st, err := Open(dir, Options{})
	require.NoError(t, err)
	f, c := memoized(st, &runs)
	for k := range 20 {
		assert.Equal(t, expected(k), f(k))
	}
	c.Close()
	require.NoError(t, st.Close())
	require.Equal(t, int64(20), runs.Load())

	info, err := os.Stat(filepath.Join(dir, fileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the database is private to its owner")
	info, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())

	// A new process: everything comes from the disk.
	st = open(t, dir, Options{})
	f, c = memoized(st, &runs)
	defer c.Close()
	for k := range 20 {
		assert.Equal(t, expected(k), f(k))
	}
	assert.Equal(t, int64(20), runs.Load(), "nothing ran again")
	ci := c.CacheInfo()
	assert.Equal(t, 20, ci.StoreHits)
	assert.Equal(t, 0, ci.StoreErrors)
}

func TestBoundEvictsLeastRecentlyUsed(t *testing.T) {
	st := open(t, t.TempDir(), Options{MaxEntries: 3})
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, st.Set(ctx, "ns", k, []byte(k), time.Time{}))
	}
	// Make a the most recently used: reads record use once a second, so
	// age the entries instead of waiting.
	_, err := st.db.Exec("UPDATE entries SET used = used - 5000")
	require.NoError(t, err)
	_, _, found, err := st.Get(ctx, "ns", "a")
	require.NoError(t, err)
	require.True(t, found)
	require.NoError(t, st.Set(ctx, "ns", "d", []byte("d"), time.Time{}))
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		_, _, found, err := st.Get(ctx, "ns", k)
		require.NoError(t, err)
		assert.Equal(t, want, found, k)
	}
}

func TestBoundInBytesKeepsTheFileSmall(t *testing.T) {
	dir := t.TempDir()
	const bound = 1 << 20
	st := open(t, dir, Options{MaxBytes: bound})
	ctx := context.Background()
	value := []byte(strings.Repeat("x", 10_000))
	for i := range 1000 { // 10 MB through a 1 MB bound
		require.NoError(t, st.Set(ctx, "ns", strconv.Itoa(i), value, time.Time{}))
	}
	var bytes, count int64
	require.NoError(t, st.db.QueryRow("SELECT bytes, count FROM totals").Scan(&bytes, &count))
	assert.LessOrEqual(t, bytes, int64(bound))
	assert.Greater(t, bytes, int64(bound-20_000), "eviction stops once under the bound")
	var sum int64
	require.NoError(t, st.db.QueryRow("SELECT sum(size) FROM entries").Scan(&sum))
	assert.Equal(t, sum, bytes, "the totals agree with the entries")
	_, _, found, err := st.Get(ctx, "ns", "999")
	require.NoError(t, err)
	assert.True(t, found, "the newest entry stays")
	_, _, found, err = st.Get(ctx, "ns", "0")
	require.NoError(t, err)
	assert.False(t, found, "the oldest went")

	_, err = st.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	require.NoError(t, err)
	info, err := os.Stat(filepath.Join(dir, fileName))
	require.NoError(t, err)
	assert.Less(t, info.Size(), int64(3*bound), "freed pages go back to the file system")

	err = st.Set(ctx, "ns", "huge", make([]byte, bound+1), time.Time{})
	assert.ErrorContains(t, err, "larger than MaxBytes")
}

// Expired entries are never returned (the contract's suite checks that);
// here, a sweep deletes them from the file.
func TestSweepDeletesExpiredEntries(t *testing.T) {
	st := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	require.NoError(t, st.Set(ctx, "ns", "old", []byte("v"), time.Now().Add(-time.Second)))
	// A sweep (every 64th write) deletes it.
	for i := range 64 {
		require.NoError(t, st.Set(ctx, "ns", strconv.Itoa(i), []byte("v"), time.Time{}))
	}
	var n int
	require.NoError(t, st.db.QueryRow("SELECT count(*) FROM entries WHERE key = ?", []byte("old")).Scan(&n))
	assert.Zero(t, n)
}
func TestForgetAndClearReachAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	var runsA, runsB atomic.Int64
	a, ca := memoized(open(t, dir, Options{}), &runsA)
	defer ca.Close()
	b, cb := memoized(open(t, dir, Options{}), &runsB)
	defer cb.Close()
	for k := range 3 {
		a(k)
		b(k)
	}
	require.Equal(t, int64(0), runsB.Load())
	require.Equal(t, 3, cb.CacheInfo().CurrSize)

	start := time.Now()
	ca.Forget(1)
	await.Soon(t, func() bool { return cb.CacheInfo().CurrSize == 2 }, "b drops 1 after a's Forget")
	t.Logf("another process's Forget seen after %v", time.Since(start))
	assert.Equal(t, expected(1), b(1))
	assert.Equal(t, int64(1), runsB.Load())

	start = time.Now()
	ca.Clear()
	await.Soon(t, func() bool { return cb.CacheInfo().CurrSize == 0 }, "b drops everything after a's Clear")
	t.Logf("another process's Clear seen after %v", time.Since(start))
	assert.Equal(t, expected(2), b(2))
	assert.Equal(t, int64(2), runsB.Load())
}

// timeout bounds what a test waits for.
const timeout = 10 * time.Second

// Processes that open a new database file at the same moment all open it:
// setting a new file's journal mode takes a lock that SQLite does not wait
// for, so Open tries again while it is busy, up to BusyTimeout.
func TestProcessesOpenANewFileAtOnce(t *testing.T) {
	const procs = 6
	for range 4 {
		dir := t.TempDir()
		var cmds []*exec.Cmd
		var outs []*bufio.Scanner
		for range procs {
			cmd, out := start(t, "open", dir)
			cmds = append(cmds, cmd)
			outs = append(outs, out)
		}
		for i, cmd := range cmds {
			require.True(t, outs[i].Scan(), "process %d did not open the file (its error is above)", i)
			require.Equal(t, "opened", outs[i].Text())
			require.NoError(t, cmd.Wait())
		}
	}
}

func TestProcessesShareOneFile(t *testing.T) {
	const procs, keys = 4, 300
	dir := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*bufio.Scanner
	for range procs {
		cmd, out := start(t, "share", dir, "MEMO_SQLITE_KEYS="+strconv.Itoa(keys))
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	var total int64
	for i, cmd := range cmds {
		require.True(t, outs[i].Scan(), "process %d reported nothing", i)
		var r report
		require.NoError(t, json.Unmarshal(outs[i].Bytes(), &r))
		require.NoError(t, cmd.Wait())
		t.Logf("process %d: %d executions, %+v", i, r.Runs, r.Info)
		assert.Zero(t, r.Wrong, "process %d got wrong values", i)
		assert.Zero(t, r.Info.StoreErrors, "process %d: no store error, \"database is locked\" included", i)
		assert.Equal(t, keys, r.Info.Misses, "each process misses each key once in memory")
		total += r.Runs
	}
	t.Logf("%d processes, %d keys: %d executions in all", procs, keys, total)
	assert.Equal(t, int64(keys), total, "each key computed once across the processes")
}

func TestSurvivesKillDuringWrites(t *testing.T) {
	dir := t.TempDir()
	rounds := 8
	if os.Getenv("MEMO_LONG_TESTS") != "" {
		rounds = 40
	}
	const stride = 1_000_000
	written := make([]int, rounds) // keys written in each round
	for round := range rounds {
		cmd, out := start(t, "write", dir, "MEMO_SQLITE_FROM="+strconv.Itoa(round*stride))
		lines := make(chan int)
		go func() {
			defer close(lines)
			for out.Scan() {
				k, _ := strconv.Atoi(out.Text())
				lines <- k
			}
		}()
		// Once it has written its first key, let it write for a while, then
		// kill it mid-write.
		last := -1
		var deadline <-chan time.Time
		started := time.After(timeout)
	reading:
		for {
			select {
			case k, ok := <-lines:
				if !ok {
					break reading
				}
				if last < 0 {
					deadline = time.After(time.Duration(rand.IntN(80)) * time.Millisecond)
				}
				last = k
			case <-deadline:
				break reading
			case <-started:
				if last < 0 {
					t.Fatalf("round %d: the writer wrote nothing in %v", round, timeout)
				}
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL), "round %d", round)
		for range lines {
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "round %d: the writer was killed: %v", round, err)
		if last >= 0 {
			written[round] = last - round*stride + 1
		}
		require.Positive(t, written[round], "round %d: the writer wrote", round)
	}

	st := open(t, dir, Options{})
	var result string
	require.NoError(t, st.db.QueryRow("PRAGMA integrity_check").Scan(&result))
	assert.Equal(t, "ok", result)
	var runs atomic.Int64
	f, c := memoized(st, &runs)
	defer c.Close()
	calls := 0
	for round, n := range written {
		// The keys announced, and a few past them: the one being written
		// when the kill came, and some never written.
		for k := round * stride; k < round*stride+n+3; k++ {
			require.Equal(t, expected(k), f(k), "key %d", k)
			calls++
		}
	}
	assert.Zero(t, c.CacheInfo().StoreErrors)
	t.Logf("%d kills; %d keys announced, %d calls, %d answered from the disk", rounds, sum(written), calls, int64(calls)-runs.Load())
	assert.GreaterOrEqual(t, int64(calls)-runs.Load(), int64(sum(written)), "every announced key was on the disk")
}

func TestDiskFull(t *testing.T) {
	// SQLite's own page limit stands for a full disk.
	st := open(t, t.TempDir(), Options{pragmas: []string{"max_page_count(40)"}})
	var failures atomic.Int64
	var runs atomic.Int64
	sh := memo.Sharing{Store: st, Name: "expected"}
	f, c := memo.Memoize(func(k int) string { runs.Add(1); return expected(k) }, memo.Share(sh),
		memo.Observe(func(e memo.Event[int, string]) {
			if e.Kind == memo.StoreFailed {
				failures.Add(1)
			}
		}))
	defer c.Close()
	for k := range 200 {
		require.Equal(t, expected(k), f(k))
	}
	assert.Equal(t, int64(200), runs.Load())
	ci := c.CacheInfo()
	assert.Positive(t, ci.StoreErrors, "the full database was reported")
	assert.Equal(t, int64(ci.StoreErrors), failures.Load())
	assert.Positive(t, ci.StoreErrors)
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	var runs atomic.Int64
	w := open(t, dir, Options{})
	fw, cw := memoized(w, &runs)
	fw(1)
	cw.Close()

	ro := open(t, dir, Options{ReadOnly: true})
	f, c := memoized(ro, &runs, memo.MaxSize(1))
	defer c.Close()
	assert.Equal(t, expected(2), f(2), "computed; nothing written")
	assert.Equal(t, expected(1), f(1), "read from the disk, the miss before notwithstanding")
	assert.Equal(t, expected(2), f(2), "computed again: the read-only store kept nothing")
	assert.Equal(t, int64(3), runs.Load())
	ci := c.CacheInfo()
	assert.Equal(t, 1, ci.StoreHits)
	assert.Zero(t, ci.StoreErrors, "a read-only store is no failure")
}

func TestLockedDatabase(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, Options{BusyTimeout: 50 * time.Millisecond})
	// Another connection holds the write lock throughout.
	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, fileName))
	require.NoError(t, err)
	defer other.Close()
	conn, err := other.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(context.Background(), "BEGIN IMMEDIATE")
	require.NoError(t, err)
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	var runs atomic.Int64
	f, c := memoized(st, &runs)
	defer c.Close()
	for k := range 3 {
		require.Equal(t, expected(k), f(k), "a locked database never fails a call")
	}
	assert.Positive(t, c.CacheInfo().StoreErrors)
}

func TestMissingDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	st := open(t, dir, Options{})
	var runs atomic.Int64
	f, c := memoized(st, &runs)
	defer c.Close()
	f(1)
	require.NoError(t, os.RemoveAll(dir))
	for k := range 3 {
		require.Equal(t, expected(k), f(k))
	}
}

func TestCorruptFileIsSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, fileName)
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("not a database ", 500)), 0o600))
	st := open(t, dir, Options{})
	var runs atomic.Int64
	f, c := memoized(st, &runs)
	defer c.Close()
	assert.Equal(t, expected(3), f(3))
	assert.Zero(t, c.CacheInfo().StoreErrors, "the new database works")
	aside, err := filepath.Glob(path + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	b, err := os.ReadFile(aside[0])
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "not a database"), "the damaged file is kept, not served")
}

func TestFlippedBytesAreNeverServed(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dir := t.TempDir()
			var runs atomic.Int64
			st, err := Open(dir, Options{})
			require.NoError(t, err)
			f, c := memoized(st, &runs)
			for k := range 50 {
				f(k)
			}
			c.Close()
			_, err = st.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			require.NoError(t, err)
			require.NoError(t, st.Close())

			// Flip bytes past the header, where rows live.
			path := filepath.Join(dir, fileName)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(seed, seed))
			for range 20 {
				i := 4096 + rng.IntN(len(b)-4096)
				b[i] ^= byte(1 + rng.IntN(255))
			}
			require.NoError(t, os.WriteFile(path, b, 0o600))

			st = open(t, dir, Options{})
			f, c = memoized(st, &runs)
			defer c.Close()
			for k := range 50 {
				require.Equal(t, expected(k), f(k), "key %d", k)
			}
			t.Logf("store hits %d, errors %d", c.CacheInfo().StoreHits, c.CacheInfo().StoreErrors)
		})
	}
}

func TestBadOptions(t *testing.T) {
	_, err := Open(t.TempDir(), Options{MaxBytes: -1})
	assert.ErrorContains(t, err, "memo/sqlite: MaxBytes")
}

func TestConcurrentGoroutines(t *testing.T) {
	st := open(t, t.TempDir(), Options{})
	var runs atomic.Int64
	f, c := memoized(st, &runs, memo.MaxSize(16))
	defer c.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := (g*7 + i) % 64
				if f(k) != expected(k) {
					t.Errorf("wrong value for %d", k)
					return
				}
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, c.CacheInfo().StoreErrors)
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t)
	st, err := Open(t.TempDir(), Options{})
	require.NoError(t, err)
	var runs atomic.Int64
	f, c := memoized(st, &runs)
	f(1)
	c.Close()
	require.NoError(t, st.Close())
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestLoweredBoundIsMetAtOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := Open(dir, Options{})
	require.NoError(t, err)
	for i := range 5000 {
		require.NoError(t, st.Set(ctx, "ns", strconv.Itoa(i), make([]byte, 100+i%200), time.Time{}))
	}
	require.NoError(t, st.Close())

	st = open(t, dir, Options{MaxBytes: 10_000})
	start := time.Now()
	require.NoError(t, st.Set(ctx, "ns", "new", []byte("v"), time.Time{}))
	t.Logf("evicting to a bound 100 times smaller took %v", time.Since(start))
	var bytes int64
	require.NoError(t, st.db.QueryRow("SELECT bytes FROM totals").Scan(&bytes))
	assert.LessOrEqual(t, bytes, int64(10_000))
	_, _, found, err := st.Get(ctx, "ns", "new")
	require.NoError(t, err)
	assert.True(t, found)
}

func TestCorruptedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, Options{})
	var runs atomic.Int64
	f, c := memoized(st, &runs, memo.MaxSize(1))
	defer c.Close()
	for k := range 20 {
		f(k)
	}
	_, err := st.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	require.NoError(t, err)
	// Connections cache pages: let each operation open a new one, as the
	// pool does over time, so that the damage is read.
	st.db.SetMaxIdleConns(0)
	// Another program overwrites the file under the open store, in place:
	// never truncated, so that no connection can see an empty database.
	path := filepath.Join(dir, fileName)
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = file.WriteAt([]byte(strings.Repeat("garbage! ", 2000)), 0)
	require.NoError(t, err)
	require.NoError(t, file.Close())

	for k := range 20 {
		require.Equal(t, expected(k), f(k), "key %d", k)
	}
	assert.Positive(t, c.CacheInfo().StoreErrors, "the damage was reported")
	aside, err := filepath.Glob(path + ".corrupt-*")
	require.NoError(t, err)
	// The damaged file was set aside, with its -wal and -shm if a
	// connection still had them open.
	var dbs []string
	for _, a := range aside {
		if !strings.HasSuffix(a, "-wal") && !strings.HasSuffix(a, "-shm") {
			dbs = append(dbs, a)
		}
	}
	require.Len(t, dbs, 1, "the damaged file was set aside: %v", aside)
	for _, a := range aside {
		assert.Contains(t, []string{dbs[0], dbs[0] + "-wal", dbs[0] + "-shm"}, a)
	}

	// The new database works: once the poller has found so (within its
	// Poll), what is computed is stored and found.
	k := 200
	await.Soon(t, func() bool {
		before := c.CacheInfo().StoreMisses
		k++
		f(k)
		return c.CacheInfo().StoreMisses > before
	}, "the new database is used")
	before := c.CacheInfo()
	f(100)
	f(101)
	f(100)
	after := c.CacheInfo()
	assert.Equal(t, 1, after.StoreHits-before.StoreHits)
	assert.Equal(t, before.StoreErrors, after.StoreErrors)
}

// The disk store's eviction is least recently used with recency recorded to
// the second: within a second, entries leave in the order they were written.
// This measures what that costs in hit ratio, against an exact LRU of the
// same size on the same Zipf trace, replayed at full speed: the whole trace
// falls within a second or two, the worst case for recency to the second.
func TestApproximateRecencyHitRatio(t *testing.T) {
	const size, n = 500, 20_000
	keys := trace.Zipf(n, 8*size, 7)
	exact := memo.NewLRU[int, bool](size, nil)
	exactHits := 0
	for _, k := range keys {
		if _, ok := exact.Get(k); ok {
			exactHits++
		} else {
			exact.Add(k, true)
		}
	}
	st := open(t, t.TempDir(), Options{MaxEntries: size})
	ctx := context.Background()
	hits := 0
	for _, k := range keys {
		key := strconv.Itoa(k)
		_, _, found, err := st.Get(ctx, "ns", key)
		require.NoError(t, err)
		if found {
			hits++
		} else {
			require.NoError(t, st.Set(ctx, "ns", key, []byte("v"), time.Time{}))
		}
	}
	lru, disk := float64(exactHits)/n, float64(hits)/n
	t.Logf("hit ratio over %d Zipf keys, %d entries: exact LRU %.3f, the disk store %.3f", n, size, lru, disk)
	assert.InDelta(t, lru, disk, 0.10, "recency to the second loses a bounded share of hits")
}

func TestClearKeepsWhatComesAfter(t *testing.T) {
	const poll, slow = 20 * time.Millisecond, 9
	dir := t.TempDir()
	var runsA, runsB atomic.Int64
	sh := memo.Sharing{Store: open(t, dir, Options{}), Name: "expected", Poll: poll}
	a, ca := memo.Memoize(func(k int) string {
		runsA.Add(1)
		if k == slow {
			time.Sleep(5 * poll) // the poller reads the store meanwhile
		}
		return expected(k)
	}, memo.Share(sh))
	defer ca.Close()
	b, cb := memoized(open(t, dir, Options{}), &runsB)
	defer cb.Close()
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

func TestGetBatch(t *testing.T) {
	st := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	require.NoError(t, st.Set(ctx, "ns", "a", []byte("A"), time.Time{}))
	require.NoError(t, st.Set(ctx, "ns", "b", []byte("B"), time.Now().Add(time.Hour)))
	require.NoError(t, st.Set(ctx, "ns", "old", []byte("O"), time.Now().Add(-time.Second)))
	require.NoError(t, st.Set(ctx, "other", "c", []byte("C"), time.Time{}))
	got, err := st.GetBatch(ctx, "ns", []string{"b", "none", "a", "old", "c", "a"})
	require.NoError(t, err)
	require.Len(t, got, 6)
	assert.Equal(t, memo.Lookup{Value: []byte("A"), Found: true}, got[2])
	assert.Equal(t, got[2], got[5], "a key asked twice")
	assert.Equal(t, []byte("B"), got[0].Value)
	assert.WithinDuration(t, time.Now().Add(time.Hour), got[0].Expires, time.Minute)
	for _, i := range []int{1, 3, 4} {
		assert.False(t, got[i].Found, "lookup %d: missing, expired, or of another namespace", i)
	}
	// As Get does, GetBatch agrees with Get and records the use of what it
	// finds.
	_, err = st.db.Exec("UPDATE entries SET used = 1")
	require.NoError(t, err)
	_, err = st.GetBatch(ctx, "ns", []string{"a", "none"})
	require.NoError(t, err)
	var used int64
	require.NoError(t, st.db.QueryRow("SELECT used FROM entries WHERE ns = 'ns' AND key = ?", []byte("a")).Scan(&used))
	assert.Greater(t, used, int64(1))
	require.NoError(t, st.db.QueryRow("SELECT used FROM entries WHERE ns = 'ns' AND key = ?", []byte("b")).Scan(&used))
	assert.Equal(t, int64(1), used)

	// More keys than one statement names.
	keys := make([]string, 2*batchMax+7)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
		if i%3 == 0 {
			require.NoError(t, st.Set(ctx, "many", keys[i], []byte(keys[i]), time.Time{}))
		}
	}
	got, err = st.GetBatch(ctx, "many", keys)
	require.NoError(t, err)
	for i, l := range got {
		if i%3 == 0 {
			assert.Equal(t, memo.Lookup{Value: []byte(keys[i]), Found: true}, l)
		} else {
			assert.False(t, l.Found)
		}
	}

	st.Close()
	_, err = st.GetBatch(ctx, "ns", []string{"a"})
	assert.ErrorContains(t, err, "memo/sqlite: the store is closed")
}

// TestBatchAcrossProcesses: a process's batch call reads what another
// process computed from the file, and computes only the rest.
func TestBatchAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	run := func(keys int) report {
		cmd, out := start(t, "batch", dir, "MEMO_SQLITE_KEYS="+strconv.Itoa(keys))
		require.True(t, out.Scan(), "the process reported nothing")
		var r report
		require.NoError(t, json.Unmarshal(out.Bytes(), &r))
		require.NoError(t, cmd.Wait())
		assert.Zero(t, r.Wrong)
		assert.Zero(t, r.Info.StoreErrors)
		return r
	}
	first := run(300)
	assert.Equal(t, int64(300), first.Runs)
	second := run(350)
	assert.Equal(t, int64(50), second.Runs, "only the keys the file lacks are computed")
	assert.Equal(t, 300, second.Info.StoreHits)
	assert.Equal(t, 50, second.Info.StoreMisses)
}

// TestBatchLeasesAcrossProcesses: two processes whose batches overlap on
// one file compute each key once in all: the second computes the keys the
// first is not computing, and waits for the first's, which it then reads
// from the file.
func TestBatchLeasesAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	start := func(from int, hold bool) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
		cmd := exec.Command(os.Args[0], "-test.run=^$", dir)
		cmd.Env = append(os.Environ(), "MEMO_SQLITE_CHILD=batch", "MEMO_SQLITE_KEYS=200", "MEMO_SQLITE_FROM="+strconv.Itoa(from))
		if hold {
			cmd.Env = append(cmd.Env, "MEMO_SQLITE_HOLD=1")
		}
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, bufio.NewScanner(out), in
	}
	line := func(out *bufio.Scanner) string {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			if out.Scan() {
				got <- out.Text()
			}
			close(got)
		}()
		select {
		case l := <-got:
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("the process printed nothing for 30s")
			return ""
		}
	}
	report := func(out *bufio.Scanner) report {
		t.Helper()
		var r report
		require.NoError(t, json.Unmarshal([]byte(line(out)), &r))
		assert.Zero(t, r.Wrong)
		assert.Zero(t, r.Info.StoreErrors)
		return r
	}
	_, outA, inA := start(0, true) // keys 0..199
	require.Equal(t, "entered", line(outA))
	_, outB, inB := start(100, true) // keys 100..299
	require.Equal(t, "entered", line(outB), "b computes the keys a is not computing")
	fmt.Fprintln(inB)
	// b now waits for 100..199, whose leases a renews: let a finish.
	fmt.Fprintln(inA)
	a, b := report(outA), report(outB)
	assert.Equal(t, int64(200), a.Runs)
	assert.Equal(t, int64(100), b.Runs, "b computed only 200..299")
	assert.Equal(t, 100, b.Info.StoreWaits, "b read a's keys from the file")
}

func TestSetBatch(t *testing.T) {
	st := open(t, t.TempDir(), Options{MaxBytes: 1000})
	ctx := context.Background()
	soon := time.Now().Add(time.Hour)
	require.NoError(t, st.SetBatch(ctx, "ns", []memo.Entry{{Key: "a", Value: []byte("A")}, {Key: "b", Value: []byte("B"), Expires: soon}}))
	got, err := st.GetBatch(ctx, "ns", []string{"a", "b"})
	require.NoError(t, err)
	assert.Equal(t, []byte("A"), got[0].Value)
	assert.Equal(t, []byte("B"), got[1].Value)
	assert.Equal(t, soon.UnixMilli(), got[1].Expires.UnixMilli())

	err = st.SetBatch(ctx, "ns", []memo.Entry{{Key: "c", Value: []byte("C")}, {Key: "big", Value: make([]byte, 1000)}})
	assert.ErrorContains(t, err, "larger than MaxBytes")
	_, _, found, err := st.Get(ctx, "ns", "c")
	require.NoError(t, err)
	assert.False(t, found, "nothing of a refused batch is written")

	// The bound holds across the batch: the least recently used go.
	var many []memo.Entry
	for i := range 30 {
		many = append(many, memo.Entry{Key: fmt.Sprintf("k%02d", i), Value: make([]byte, 100)})
	}
	require.NoError(t, st.SetBatch(ctx, "ns", many))
	var bytes int64
	require.NoError(t, st.db.QueryRow("SELECT bytes FROM totals").Scan(&bytes))
	assert.LessOrEqual(t, bytes, int64(1000))
	_, _, found, err = st.Get(ctx, "ns", "k29")
	require.NoError(t, err)
	assert.True(t, found, "the last written is kept")
}
