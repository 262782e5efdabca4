package redisstore

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/internal/await"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRefusesBadGroupsAndPrefix(t *testing.T) {
	srv := redistest.Start(t)
	for _, o := range []Options{{Groups: -1}, {Groups: maxGroups + 1}, {Prefix: "a{b"}, {Prefix: "}"}} {
		_, err := New(srv.Client(t), o)
		assert.ErrorContains(t, err, "memo/redisstore", "%+v", o)
	}
	_, err := New(srv.Client(t), Options{Groups: maxGroups})
	assert.NoError(t, err)
}

func TestGroupsArePartOfTheLayout(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	st64 := newStore(t, srv.Client(t))
	st32, err := New(srv.Client(t), Options{Groups: 32})
	require.NoError(t, err)
	require.NoError(t, st64.Set(ctx, "ns", "k", []byte("of 64"), time.Time{}))
	_, _, found, err := st32.Get(ctx, "ns", "k")
	require.NoError(t, err)
	assert.False(t, found, "a store with another number of groups does not read the value")
	require.NoError(t, st32.Set(ctx, "ns", "k", []byte("of 32"), time.Time{}))
	require.NoError(t, st32.Clear(ctx, "ns"))
	v, _, found, err := st64.Get(ctx, "ns", "k")
	require.NoError(t, err)
	assert.True(t, found, "nor does it clear it")
	assert.Equal(t, "of 64", string(v))
}

func TestClearReachesEveryGroup(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	ctx := context.Background()
	st := newStore(t, rc)
	const n = 1000
	groups := map[int]bool{}
	for i := range n {
		k := "k" + strconv.Itoa(i)
		groups[st.group(k)] = true
		require.NoError(t, st.Set(ctx, "ns", k, []byte("v"), time.Time{}))
	}
	require.Len(t, groups, defaultGroups, "the keys fall in every group")
	require.NoError(t, st.Clear(ctx, "ns"))
	keys, err := rc.Keys(ctx, values("ns")).Result()
	require.NoError(t, err)
	assert.Empty(t, keys, "Clear swept the old values")
	// Values of the old generation left behind (a sweep cut short) are
	// misses in every group; values of the new one are found.
	for i := range n {
		k := "k" + strconv.Itoa(i)
		require.NoError(t, rc.Set(ctx, st.names("ns", k).value(), "0:old", 0).Err())
		_, _, found, err := st.Get(ctx, "ns", k)
		require.NoError(t, err)
		require.False(t, found, "%s, of group %d, is of the generation before the Clear", k, st.group(k))
		require.NoError(t, rc.Set(ctx, st.names("ns", k).value(), "1:new", 0).Err())
		v, _, found, err := st.Get(ctx, "ns", k)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, "new", string(v))
	}
}

func TestTrimmedGroupReadsAsLost(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	st, err := New(srv.Client(t), Options{KeepChanges: 1})
	require.NoError(t, err)
	// Keys of group 0, and one of another group.
	var same []string
	other := ""
	for i := 0; len(same) < 300 || other == ""; i++ {
		k := strconv.Itoa(i)
		if st.group(k) == 0 {
			same = append(same, k)
		} else if other == "" {
			other = k
		}
	}
	_, _, cursor, err := st.Changes(ctx, "ns", 0)
	require.NoError(t, err)
	require.NoError(t, st.Delete(ctx, "ns", other))
	require.NoError(t, st.Delete(ctx, "ns", same[0]))
	keys, all, next, err := st.Changes(ctx, "ns", cursor)
	require.NoError(t, err)
	assert.False(t, all)
	assert.ElementsMatch(t, []string{other, same[0]}, keys, "deletions from two groups")
	again, _, same2, err := st.Changes(ctx, "ns", next)
	require.NoError(t, err)
	assert.Empty(t, again)
	assert.Equal(t, next, same2, "a reading that finds nothing keeps the cursor")

	// Group 0's stream is trimmed past the reader (XADD MAXLEN ~ trims
	// whole nodes of 100 entries).
	for _, k := range same[1:] {
		require.NoError(t, st.Delete(ctx, "ns", k))
	}
	_, all, _, err = st.Changes(ctx, "ns", next)
	require.NoError(t, err)
	assert.True(t, all, "lost deletions of one group read as a Clear")

	_, all, fresh, err := st.Changes(ctx, "ns", 12345)
	require.NoError(t, err)
	assert.True(t, all, "a cursor the store does not know reads as lost deletions")
	keys, all, _, err = st.Changes(ctx, "ns", fresh)
	require.NoError(t, err)
	assert.False(t, all)
	assert.Empty(t, keys, "and the cursor it returns is the present")
}

func TestCursorsAreBounded(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	st, err := New(srv.Client(t), Options{Groups: 1})
	require.NoError(t, err)
	_, _, live, err := st.Changes(ctx, "ns", 0)
	require.NoError(t, err)
	for i := range maxCursors + 500 {
		require.NoError(t, st.Delete(ctx, "other", strconv.Itoa(i%10)))
		_, _, _, err := st.Changes(ctx, "other", 0)
		require.NoError(t, err)
		if i%100 == 0 {
			_, all, next, err := st.Changes(ctx, "ns", live)
			require.NoError(t, err)
			require.False(t, all, "a cursor in use is kept")
			require.Equal(t, live, next)
		}
	}
	st.cmu.Lock()
	defer st.cmu.Unlock()
	assert.LessOrEqual(t, len(st.cursors), maxCursors)
}

func TestLostNotificationCaughtByPoll(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	ctx := context.Background()
	var runs atomic.Int64
	b, cb := memoized(t, newStore(t, rc), &runs) // Poll 20ms
	b(3)
	keys, err := rc.Keys(ctx, values("expected/0")).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	// Another process's deletion of 3 whose message is lost: the value and
	// the stream entry go, and nothing is published.
	group, key, _ := strings.Cut(keys[0], "}:v:")
	require.NoError(t, rc.Del(ctx, keys[0]).Err())
	require.NoError(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: group + "}:c", Values: []any{"k", key}}).Err())
	await.Soon(t, func() bool { return !cb.Contains(3) }, "the poll reads a deletion whose message was lost")
}

func TestDeletionsPushedToOtherClients(t *testing.T) {
	srv := redistest.Start(t)
	var runsA, runsB atomic.Int64
	sh := func(st memo.Store) memo.Option {
		return memo.Share(memo.Sharing{Store: st, Name: "expected", Poll: time.Hour})
	}
	a, ca := memo.Memoize(func(k int) string { runsA.Add(1); return expected(k) }, sh(newStore(t, srv.Client(t))))
	defer ca.Close()
	b, cb := memo.Memoize(func(k int) string { runsB.Add(1); return expected(k) }, sh(newStore(t, srv.Client(t))))
	defer cb.Close()
	for k := range 10 {
		a(k)
		b(k)
	}
	require.Zero(t, runsB.Load())
	ca.Forget(3)
	await.Soon(t, func() bool { return !cb.Contains(3) }, "b drops 3 when a's Forget is published, long before its Poll (1h)")
	assert.Equal(t, 9, cb.Len())
	ca.Clear()
	await.Soon(t, func() bool { return cb.Len() == 0 }, "b empties its memory when a's Clear is published")
}
