package memoprom

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestCollector(t *testing.T) {
	square, sq := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(2))
	square(1)
	square(1)
	square(2)
	square(3) // evicts 1
	_, other := memo.Memoize(func(s string) int { return len(s) }, memo.Unbounded())

	col := New()
	col.Add("square", sq.CacheInfo)
	col.Add("len", other.CacheInfo)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(col), "the metrics follow Prometheus's rules")

	want := `
# HELP memo_entries Entries in the cache.
# TYPE memo_entries gauge
memo_entries{cache="len"} 0
memo_entries{cache="square"} 2
# HELP memo_evictions_total Entries dropped to make room.
# TYPE memo_evictions_total counter
memo_evictions_total{cache="len"} 0
memo_evictions_total{cache="square"} 1
# HELP memo_hits_total Calls answered without running the function.
# TYPE memo_hits_total counter
memo_hits_total{cache="len"} 0
memo_hits_total{cache="square"} 1
# HELP memo_entries_limit The most entries the cache holds; 0 when unbounded.
# TYPE memo_entries_limit gauge
memo_entries_limit{cache="len"} 0
memo_entries_limit{cache="square"} 2
# HELP memo_misses_total Calls the cache could not answer from memory.
# TYPE memo_misses_total counter
memo_misses_total{cache="len"} 0
memo_misses_total{cache="square"} 3
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"memo_entries", "memo_evictions_total", "memo_hits_total", "memo_entries_limit", "memo_misses_total"))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 2*len(memo.CacheInfo{}.Measures()), n, "every CacheInfo number, for each cache")

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems, "promlint finds nothing to fix")
}

func TestCollectorAdvice(t *testing.T) {
	square, sq := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(4), memo.EstimateSizes(0))
	for range 2 {
		for n := range 6 { // 6 keys: too many for 4 entries, few enough for 8
			square(n)
		}
	}
	col := New()
	col.AddAdvice("square", sq.SizeAdvice)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(col))
	want := `
# HELP memo_size_hit_ratio Estimated hit ratio of the cache at size entries (memo.EstimateSizes); size="unbounded" for no bound.
# TYPE memo_size_hit_ratio gauge
memo_size_hit_ratio{cache="square",size="2"} 0
memo_size_hit_ratio{cache="square",size="4"} 0
memo_size_hit_ratio{cache="square",size="8"} 0.5
memo_size_hit_ratio{cache="square",size="16"} 0.5
memo_size_hit_ratio{cache="square",size="32"} 0.5
memo_size_hit_ratio{cache="square",size="unbounded"} 0.5
# HELP memo_saved_seconds Estimated time the cache saved its callers: mean execution time times hits (with memo.MeasureExecTime).
# TYPE memo_saved_seconds gauge
memo_saved_seconds{cache="square"} 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "memo_size_hit_ratio", "memo_saved_seconds"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems, "promlint finds nothing to fix")
}

// forgedStore is a store whose every value was written by someone without
// the secret.
type forgedStore struct{}

func (forgedStore) Get(context.Context, string, string) ([]byte, time.Time, bool, error) {
	return []byte("m\x02 a value no holder of the secret wrote, long enough for a sealed frame"), time.Time{}, true, nil
}
func (forgedStore) Set(context.Context, string, string, []byte, time.Time) error { return nil }
func (forgedStore) Delete(context.Context, string, string) error                 { return nil }
func (forgedStore) Clear(context.Context, string) error                          { return nil }
func (forgedStore) Lease(context.Context, string, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (forgedStore) Unlease(context.Context, string, string, string) error { return nil }
func (forgedStore) Changes(context.Context, string, uint64) ([]string, bool, uint64, error) {
	return nil, false, 1, nil
}

func TestCollectorStoreRejected(t *testing.T) {
	square, sq := memo.Memoize(func(n int) int { return n * n }, memo.Share(memo.Sharing{
		Store: forgedStore{}, Name: "square", Secret: []byte("a secret of 16 bytes or more")}))
	defer sq.Close()
	require.Equal(t, 4, square(2))
	require.Equal(t, 9, square(3))
	col := New()
	col.Add("square", sq.CacheInfo)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(col))
	want := `
# HELP memo_store_rejected_total Values read from the shared store that the Secret did not authenticate.
# TYPE memo_store_rejected_total counter
memo_store_rejected_total{cache="square"} 2
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "memo_store_rejected_total"))
}
