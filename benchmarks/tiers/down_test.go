package tiers

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/go-redis/cache/v9"
	"github.com/gomemo/memo"
	"github.com/gomemo/memo/redisstore"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisaside"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWhenRedisIsDown records what a call gets from memo, go-redis/cache and
// rueidisaside while their Redis is killed, then paused (SIGSTOP). memo must
// always answer, within its Timeout;
// the others' behaviour is asserted as observed, so that a change in it
// shows here.
func TestWhenRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	compute := func(k int) string { return "v" + strconv.Itoa(k) }

	st, err := redisstore.New(srv.Client(t), redisstore.Options{})
	require.NoError(t, err)
	memoF, c := memo.Memoize(compute, memo.MaxSize(1), memo.Share(memo.Sharing{Store: st, Name: "down", Timeout: 200 * time.Millisecond}))
	defer c.Close()

	grc := cache.New(&cache.Options{Redis: redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, DialTimeout: 200 * time.Millisecond})})
	grcF := func(k int) (string, error) {
		var v string
		err := grc.Once(&cache.Item{Ctx: ctx, Key: "down:" + strconv.Itoa(k), Value: &v, TTL: time.Hour,
			Do: func(*cache.Item) (any, error) { return compute(k), nil }})
		return v, err
	}

	aside, err := rueidisaside.NewClient(rueidisaside.ClientOption{ClientOption: rueidis.ClientOption{
		InitAddress: []string{srv.Addr()}, ConnWriteTimeout: 200 * time.Millisecond, Dialer: net200()}})
	require.NoError(t, err)
	defer aside.Client().Close()
	asideF := func(k int) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return aside.Get(ctx, time.Hour, "aside-down:"+strconv.Itoa(k), func(context.Context, string) (string, error) { return compute(k), nil })
	}

	// Up: all three answer.
	assert.Equal(t, "v1", memoF(1))
	v, err := grcF(1)
	require.NoError(t, err)
	assert.Equal(t, "v1", v)
	v, err = asideF(1)
	require.NoError(t, err)
	assert.Equal(t, "v1", v)

	call := func(name string, f func(int) (string, error), k int) (string, time.Duration, error) {
		start := time.Now()
		v, err := f(k)
		took := time.Since(start)
		t.Logf("%-15s key %d: %q, %v, in %v", name, k, v, err, took.Round(time.Millisecond))
		return v, took, err
	}
	memoE := func(k int) (string, error) { return memoF(k), nil }

	srv.Pause()
	t.Log("Redis paused (SIGSTOP)")
	v, took, _ := call("memo", memoE, 2)
	assert.Equal(t, "v2", v)
	assert.Less(t, took, time.Second)
	v, _, err = call("go-redis/cache", grcF, 2)
	assert.Equal(t, "v2", v, "go-redis/cache computes, after waiting out its client's timeouts")
	assert.NoError(t, err)
	_, _, err = call("rueidisaside", asideF, 2)
	assert.Error(t, err, "rueidisaside fails the call")
	srv.Resume()

	srv.Kill()
	t.Log("Redis killed")
	v, took, _ = call("memo", memoE, 3)
	assert.Equal(t, "v3", v)
	assert.Less(t, took, time.Second)
	v, _, err = call("go-redis/cache", grcF, 3)
	assert.Equal(t, "v3", v)
	assert.NoError(t, err)
	_, _, err = call("rueidisaside", asideF, 3)
	assert.Error(t, err)
}

// net200 is a dialer that gives up after 200ms, as the other clients do.
func net200() net.Dialer { return net.Dialer{Timeout: 200 * time.Millisecond} }
