package memo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// squaring returns a memoized k*k over a cache built with opts, and how many
// times k*k was computed.
func squaring(opts ...Option) (func(int) int, *Cache[int, int], *atomic.Int32) {
	var runs atomic.Int32
	f, c := Memoize(func(k int) int { runs.Add(1); return k * k }, opts...)
	return f, c, &runs
}

// save returns what c.Save writes, failing the test on an error.
func save[K comparable, V any](t *testing.T, c *Cache[K, V]) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, c.Save(&b))
	return b.Bytes()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	f, c, _ := squaring(MaxSize(100), Shards(2))
	for k := range 10 {
		f(k)
	}
	f(3)
	before, order := c.CacheInfo(), keysOf(c.Hottest())
	b := save(t, c)
	assert.Equal(t, before, c.CacheInfo(), "saving counts nothing")
	assert.Equal(t, order, keysOf(c.Hottest()), "saving moves nothing")

	g, c2, runs := squaring(MaxSize(100), Shards(2))
	n, err := c2.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	assert.Equal(t, keysOf(c.Hottest()), keysOf(c2.Hottest()), "the recency order carries over")
	assert.Equal(t, counts{}, countsOf(c2.CacheInfo()), "loading counts no hit and no miss")
	for k := range 10 {
		assert.Equal(t, k*k, g(k))
	}
	assert.Zero(t, runs.Load(), "every key was answered from the snapshot")
	assert.Equal(t, counts{Hits: 10}, countsOf(c2.CacheInfo()))
}

func TestLoadKeepsTTL(t *testing.T) {
	clk := newFakeClock(t0)
	f, c, _ := squaring(TTL(10*time.Second), Clock(clk.Now))
	f(1) // expires at t0+10s
	clk.Advance(4 * time.Second)
	f(2) // expires at t0+14s
	clk.Advance(2 * time.Second)
	b := save(t, c)

	clk2 := newFakeClock(t0.Add(7 * time.Second)) // a restart takes a second
	g, c2, runs := squaring(TTL(time.Hour), Clock(clk2.Now))
	n, err := c2.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	clk2.Set(t0.Add(10*time.Second - time.Nanosecond))
	g(1)
	assert.Zero(t, runs.Load(), "fresh until its saved expiry")
	clk2.Set(t0.Add(10 * time.Second))
	g(1)
	assert.EqualValues(t, 1, runs.Load(), "expired at exactly its saved expiry")
	clk2.Set(t0.Add(14*time.Second - time.Nanosecond))
	g(2)
	assert.EqualValues(t, 1, runs.Load())
	clk2.Set(t0.Add(14 * time.Second))
	g(2)
	assert.EqualValues(t, 2, runs.Load())

	// Loaded later: the expired entry is skipped.
	clk3 := newFakeClock(t0.Add(11 * time.Second))
	_, c3, _ := squaring(TTL(time.Hour), Clock(clk3.Now))
	n, err = c3.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.False(t, c3.Contains(1))
	assert.True(t, c3.Contains(2))

	// A shorter TTL in the new cache wins over the saved expiry.
	clk4 := newFakeClock(t0.Add(7 * time.Second))
	_, c4, _ := squaring(TTL(time.Second), Clock(clk4.Now))
	n, err = c4.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	clk4.Advance(time.Second)
	assert.Zero(t, c4.Len())
}

func TestLoadSmallerCacheKeepsHottest(t *testing.T) {
	f, c, _ := squaring(Unbounded())
	for k := range 105 {
		f(k)
	}
	f(5)
	b := save(t, c)
	_, c2, _ := squaring(MaxSize(10))
	n, err := c2.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	assert.Equal(t, []int{5, 104, 103, 102, 101, 100, 99, 98, 97, 96}, keysOf(c2.Hottest()))
	assert.Equal(t, counts{}, countsOf(c2.CacheInfo()), "only the ten hottest were stored: nothing evicted")
}

func TestLoadNeverReplaces(t *testing.T) {
	f, c, _ := squaring()
	f(1)
	f(2)
	b := save(t, c)

	gate := make(chan struct{})
	started := make(chan struct{}, 1)
	g, c2 := Memoize(func(k int) int {
		if k == 2 {
			started <- struct{}{}
			<-gate
		}
		return -k
	})
	c2.Put(1, 100) // a newer value
	done := make(chan int)
	go func() { done <- g(2) }()
	within(t, timeout, func() {
		<-started // an execution for 2 is in progress
		n, err := c2.Load(bytes.NewReader(b))
		require.NoError(t, err)
		assert.Zero(t, n)
		close(gate)
		assert.Equal(t, -2, <-done)
	})
	v, _ := c2.Peek(1)
	assert.Equal(t, 100, v, "the value Put stays")
	v, _ = c2.Peek(2)
	assert.Equal(t, -2, v, "the execution's result is stored, not the snapshot's")
}

type snapKey struct{ A, B int }

func TestLoadRefusesOtherTypes(t *testing.T) {
	f, c := Memoize(func(k int) int { return k })
	f(1)
	b := save(t, c)
	refused := func(t *testing.T, load func() (int, error), n func() int, want string) {
		t.Helper()
		_, err := load()
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
		assert.Zero(t, n(), "nothing loaded")
	}
	_, ck := Memoize(func(k string) int { return 0 })
	refused(t, func() (int, error) { return ck.Load(bytes.NewReader(b)) }, ck.Len, "memo: Load: the snapshot holds keys of type int, this cache's are string")
	_, cv := Memoize(func(k int) string { return "" })
	refused(t, func() (int, error) { return cv.Load(bytes.NewReader(b)) }, cv.Len, "memo: Load: the snapshot holds values of type int, this cache's are string")

	// A type of one name and another structure.
	var b2 []byte
	{
		type T struct{ A int }
		f, c := Memoize(func(k int) T { return T{k} })
		f(1)
		b2 = save(t, c)
	}
	{
		type T struct{ A, B int }
		_, c := Memoize(func(k int) T { return T{} })
		refused(t, func() (int, error) { return c.Load(bytes.NewReader(b2)) }, c.Len, "values of a type named memo.T whose structure (fingerprint) differs")
	}

	// Another KeyVersion: the header rewritten, its frame made anew.
	hb := headerBody(t, b)
	hb[0] = KeyVersion + 1
	_, c2 := Memoize(func(k int) int { return k })
	refused(t, func() (int, error) { return c2.Load(bytes.NewReader(withHeader(t, b, hb, nil))) }, c2.Len,
		"memo: Load: the snapshot was written under KeyVersion 3, this memo's is 2")
}

// headerBody returns the body of the header of snapshot b (without a
// Secret).
func headerBody(t *testing.T, b []byte) []byte {
	t.Helper()
	r := b[len(snapMagic)+1:]
	l, n := binary.Uvarint(r)
	body, _, err := unframe(snapNS, "", 0, r[n:n+int(l)])
	require.NoError(t, err)
	return bytes.Clone(body)
}

// withHeader returns snapshot b with its header's body replaced by hb,
// framed with secret.
func withHeader(t *testing.T, b, hb, secret []byte) []byte {
	t.Helper()
	r := b[len(snapMagic)+1:]
	l, n := binary.Uvarint(r)
	rest := r[n+int(l):]
	f := frame(snapNS, "", 0, 0, secret, hb)
	out := append([]byte(snapMagic), tagHeader)
	out = binary.AppendUvarint(out, uint64(len(f)))
	out = append(out, f...)
	return append(out, rest...)
}

func TestLoadSharedNamespaceAndSecret(t *testing.T) {
	st := newMemStore()
	secret, other := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	shared := func(name string, secret, old []byte) (func(int) int, *Cache[int, int]) {
		f, c := Memoize(func(k int) int { return k * k }, Share(Sharing{Store: st, Name: name, Secret: secret, OldSecret: old}))
		t.Cleanup(c.Close)
		return f, c
	}
	f, c := shared("sq", secret, nil)
	f(3)
	b := save(t, c)

	sets := st.sets.Load()
	_, same := shared("sq", secret, nil)
	n, err := same.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, sets, st.sets.Load(), "Load writes nothing to the store")

	_, rotated := shared("sq", other, secret)
	n, err = rotated.Load(bytes.NewReader(b))
	require.NoError(t, err, "OldSecret reads it")
	assert.Equal(t, 1, n)

	_, wrong := shared("sq", other, nil)
	_, err = wrong.Load(bytes.NewReader(b))
	require.ErrorIs(t, err, ErrUnauthenticated)
	assert.Contains(t, err.Error(), "memo: Load: the snapshot was not written with this cache's Secret")
	assert.Zero(t, wrong.Len())

	_, plain := Memoize(func(k int) int { return k })
	_, err = plain.Load(bytes.NewReader(b))
	require.EqualError(t, err, "memo: Load: the snapshot was written with a Secret, and this cache has none")

	_, renamed := shared("cube", secret, nil)
	_, err = renamed.Load(bytes.NewReader(b))
	require.EqualError(t, err, `memo: Load: the snapshot was written by a cache shared as "sq/0", this one's namespace is "cube/0"`)
	assert.Zero(t, renamed.Len())

	// A plain snapshot is refused by a cache with a Secret.
	g, pc := Memoize(func(k int) int { return k * k })
	g(3)
	_, err = same.Load(bytes.NewReader(save(t, pc)))
	require.ErrorIs(t, err, ErrUnauthenticated)
}

func TestLoadRefusesCorruptBytes(t *testing.T) {
	clk := newFakeClock(t0)
	f, c := Memoize(func(k snapKey) string { return "v" }, TTL(time.Minute), Clock(clk.Now))
	for i := range 3 {
		f(snapKey{i, -i})
	}
	b := save(t, c)
	load := func(b []byte) (int, error) {
		_, c2 := Memoize(func(k snapKey) string { return "" }, TTL(time.Minute), Clock(clk.Now))
		n, err := c2.Load(bytes.NewReader(b))
		if err != nil && c2.Len() != 0 {
			t.Errorf("%d entries loaded from a damaged snapshot", c2.Len())
		}
		return n, err
	}
	n, err := load(nil)
	require.Error(t, err)
	assert.Zero(t, n)
	for i := range len(b) {
		n, err := load(b[:i])
		if assert.Error(t, err, "cut at %d of %d bytes", i, len(b)) {
			assert.Contains(t, err.Error(), "memo: Load: ")
		}
		assert.Zero(t, n)
	}
	for i := range len(b) {
		for _, x := range []byte{0x01, 0xff} {
			d := bytes.Clone(b)
			d[i] ^= x
			n, err := load(d)
			if assert.Error(t, err, "byte %d of %d flipped by %#x", i, len(b), x) {
				assert.Contains(t, err.Error(), "memo: Load: ")
			}
			assert.Zero(t, n)
		}
	}
	n, err = load(b)
	require.NoError(t, err, "the undamaged snapshot loads")
	assert.Equal(t, 3, n)
}

func TestLoadReordered(t *testing.T) {
	f, c, _ := squaring()
	f(1)
	f(2)
	b := save(t, c)
	// Split the snapshot into its chunks, swap the two entries'.
	var chunks [][]byte
	r := b[len(snapMagic):]
	for len(r) > 0 {
		at := 1
		if r[0] == tagEntry {
			l, n := binary.Uvarint(r[at:])
			at += n + int(l) + expiryLen
		}
		l, n := binary.Uvarint(r[at:])
		at += n + int(l)
		chunks, r = append(chunks, r[:at]), r[at:]
	}
	require.Len(t, chunks, 4)
	swapped := slices.Concat([]byte(snapMagic), chunks[0], chunks[2], chunks[1], chunks[3])
	_, c2, _ := squaring()
	_, err := c2.Load(bytes.NewReader(swapped))
	require.ErrorContains(t, err, "memo: Load: the snapshot is damaged")
	assert.Zero(t, c2.Len())
	// Dropping the last entry is seen by the end's count.
	dropped := slices.Concat([]byte(snapMagic), chunks[0], chunks[1], chunks[3])
	_, err = c2.Load(bytes.NewReader(dropped))
	require.EqualError(t, err, "memo: Load: the snapshot is damaged: it ends after 1 entries, its end says 2")
	// An entry of another snapshot of the same cache is refused: each
	// snapshot has its own nonce.
	other := save(t, c)
	require.NotEqual(t, b, other)
}

func TestLoadBoundsLengths(t *testing.T) {
	f, c, _ := squaring()
	f(1)
	b := save(t, c)
	hdrEnd := len(snapMagic) + 1
	l, n := binary.Uvarint(b[hdrEnd:])
	hdrEnd += n + int(l)
	// An entry that claims a key of 1 TiB.
	huge := slices.Concat(b[:hdrEnd], []byte{tagEntry}, binary.AppendUvarint(nil, 1<<40))
	_, c2, _ := squaring()
	within(t, timeout, func() {
		_, err := c2.Load(bytes.NewReader(huge))
		require.EqualError(t, err, "memo: Load: the snapshot is damaged or too large: a key of 1099511627776 bytes, more than 16777216")
	})
	assert.Zero(t, c2.Len())
}

func TestSaveRefusesWhatItCannotEncode(t *testing.T) {
	_, cp := Memoize(func(k *int) int { return 0 })
	err := cp.Save(new(bytes.Buffer))
	require.EqualError(t, err, "memo: Save: keys of type *int cannot be saved: it holds a *int, which is compared by address")
	_, ca := Memoize(func(k any) int { return 0 })
	err = ca.Save(new(bytes.Buffer))
	require.EqualError(t, err, "memo: Save: the default codec (gob) cannot carry keys of type interface {} exactly: interface {} is an interface, whose concrete types gob needs registered; share the cache with a Codec that can")
	type hidden struct{ a int }
	_, ch := Memoize(func(k int) hidden { return hidden{k} })
	err = ch.Save(new(bytes.Buffer))
	require.EqualError(t, err, "memo: Save: the default codec (gob) cannot carry values of type memo.hidden exactly: memo.hidden's field a is unexported, and gob would drop it; share the cache with a Codec that can")
	_, err = ch.Load(bytes.NewReader(nil))
	require.ErrorContains(t, err, "memo: Load: the default codec (gob) cannot carry values of type memo.hidden")
	// A value that does not come back from gob unchanged.
	type holder struct{ S []int }
	g, cs := Memoize(func(k int) holder { return holder{S: []int{}} })
	g(1)
	err = cs.Save(new(bytes.Buffer))
	require.ErrorContains(t, err, "memo: Save: the value of key 1: memo: the value of type memo.holder does not survive its codec unchanged")
}

// failing is a writer that fails after n bytes.
type failing struct{ n int }

func (w *failing) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return w.n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestSaveWriterFails(t *testing.T) {
	f, c, _ := squaring()
	for k := range 1000 {
		f(k)
	}
	err := c.Save(&failing{n: 5000})
	require.EqualError(t, err, "memo: Save: writing the snapshot: disk full")
}

func TestSaveConcurrent(t *testing.T) {
	f, c := Memoize(func(k int) int { return k * k }, MaxSize(64), Shards(4), TTL(time.Hour))
	stop := make(chan struct{})
	var snaps [][]byte
	within(t, 60*time.Second, func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			hammer(t, 3, 50*time.Second, 7, func(g int, rng *rand.Rand) {
				for {
					select {
					case <-stop:
						return
					default:
					}
					k := rng.IntN(200)
					switch rng.IntN(10) {
					case 0:
						c.Forget(k)
					case 1:
						c.Put(k, k*k)
					default:
						if v := f(k); v != k*k {
							t.Errorf("f(%d) = %d", k, v)
						}
					}
				}
			})
		}()
		eventually(func() bool { return c.Len() >= 32 })
		for range 20 {
			var b bytes.Buffer
			if err := c.Save(&b); err != nil {
				t.Error(err)
			}
			snaps = append(snaps, b.Bytes())
			// Loading into the cache in use: never over what calls
			// store meanwhile, every value still right.
			if _, err := c.Load(bytes.NewReader(b.Bytes())); err != nil {
				t.Error(err)
			}
		}
		close(stop)
		<-done
	})
	total := 0
	for _, b := range snaps {
		_, c2 := Memoize(func(k int) int { return -1 }, MaxSize(64))
		n, err := c2.Load(bytes.NewReader(b))
		require.NoError(t, err)
		total += n
		for k, v := range c2.Hottest() {
			require.Equal(t, k*k, v)
		}
	}
	assert.Positive(t, total, "the snapshots held entries")
}

func TestLoadSkipsWhatTheCacheRefuses(t *testing.T) {
	f, c, _ := squaring()
	for k := range 4 {
		f(k)
	}
	b := save(t, c)
	// ExpireAfter says not to cache odd squares; MaxWeight refuses 9.
	_, c2 := Memoize(func(k int) int { return 0 },
		ExpireAfter(func(v int) time.Duration {
			if v%2 == 1 {
				return -1
			}
			return time.Hour
		}))
	n, err := c2.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.ElementsMatch(t, []int{0, 2}, keysOf(c2.Hottest()))

	_, c3 := Memoize(func(k int) int { return 0 }, MaxWeight(8, func(k, v int) int { return v }))
	n, err = c3.Load(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, 3, n, "9 is heavier than the whole cache")
}
