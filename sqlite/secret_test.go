package sqlite

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecretOnDisk(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, Options{})
	secret := []byte("a secret of at least 16 bytes")
	var runs atomic.Int64
	sealed := func() (func(int) string, *memo.Cache[int, string]) {
		sh := memo.Sharing{Store: st, Name: "expected", Poll: 20 * time.Millisecond, Secret: secret}
		return memo.Memoize(func(k int) string { runs.Add(1); return expected(k) }, memo.Share(sh), memo.TTL(time.Hour))
	}
	f, c := sealed()
	defer c.Close()
	for k := range 10 {
		f(k)
	}
	// Another program, without the secret, writes wrong values first.
	forger, fc := memo.Memoize(func(k int) string { return "forged" }, memo.Share(memo.Sharing{Store: st, Name: "expected"}))
	for k := 10; k < 20; k++ {
		forger(k)
	}
	fc.Close()
	// Someone who can write the file moves 0's value onto 1's row.
	k0, err := memo.TypedKeyOf(0)
	require.NoError(t, err)
	k1, err := memo.TypedKeyOf(1)
	require.NoError(t, err)
	r, err := st.db.Exec("UPDATE entries SET value = (SELECT value FROM entries WHERE ns = ? AND key = ?) WHERE ns = ? AND key = ?",
		"expected/0", []byte(k0), "expected/0", []byte(k1))
	require.NoError(t, err)
	n, err := r.RowsAffected()
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	runs.Store(0)
	g, cg := sealed()
	defer cg.Close()
	for k := range 20 {
		assert.Equal(t, expected(k), g(k), "key %d", k)
	}
	ci := cg.CacheInfo()
	assert.Equal(t, 9, ci.StoreHits, "the values written with the secret")
	assert.Equal(t, 11, ci.StoreRejected, "the forged ones and the moved one")
	assert.Equal(t, int64(11), runs.Load(), "each rejected value recomputed")
}

func TestValueLongerThanMaxValueLeftUnread(t *testing.T) {
	st := open(t, t.TempDir(), Options{})
	big, cb := memo.Memoize(func(int) string { return strings.Repeat("x", 10000) }, memo.Share(memo.Sharing{Store: st, Name: "expected"}))
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
	assert.Equal(t, expected(1), f(1))
	assert.Equal(t, int64(1), runs.Load())
	require.Len(t, failures, 1)
	assert.ErrorIs(t, failures[0], memo.ErrValueTooLarge, "refused by the store, which never read it")
	t.Log(failures[0])
}
