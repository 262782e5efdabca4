// Package tiers measures what a hit costs in each of memo's tiers (memory,
// disk, Redis), side by side with the two Go libraries that put a function's
// results in Redis: go-redis/cache and rueidisaside. Every benchmark cycles
// over the same 1000 keys, all cached before the timer starts, with a value
// of 300 bytes, against one redis-server the benchmark starts.
//
//	cd benchmarks && go test -run '^$' -bench . -count 5 ./tiers
package tiers

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/cache/v9"
	"github.com/gomemo/memo"
	"github.com/gomemo/memo/redisstore"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/gomemo/memo/sqlite"
	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisaside"
)

const keys = 1000

var value = strings.Repeat("v", 300)

// cycle runs get over the keys in turn, b.N times.
func cycle(b *testing.B, get func(k int) string) {
	for k := range keys {
		get(k)
	}
	k := 0
	for b.Loop() {
		if get(k) != value {
			b.Fatal("wrong value")
		}
		k++
		if k == keys {
			k = 0
		}
	}
}

func BenchmarkHit(b *testing.B) {
	srv := redistest.Start(b)
	compute := func(int) string { return value }

	// memo: in memory; then with a cache of one entry in memory, so that
	// every call is answered by the store, without and with a Secret (each
	// value's frame authenticated by an HMAC-SHA256, checked on every hit).
	b.Run("memo-memory", func(b *testing.B) {
		f, c := memo.Memoize(compute, memo.MaxSize(keys))
		defer c.Close()
		cycle(b, f)
	})
	secret := []byte("a secret of at least 16 bytes, for the benchmark")
	for _, sealed := range []bool{false, true} {
		sharing := memo.Sharing{Name: "bench"}
		suffix := ""
		if sealed {
			sharing.Secret, suffix = secret, "-secret"
		}
		b.Run("memo-disk"+suffix, func(b *testing.B) {
			st, err := sqlite.Open(b.TempDir(), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			sh := sharing
			sh.Store = st
			f, c := memo.Memoize(compute, memo.MaxSize(1), memo.Share(sh))
			defer c.Close()
			cycle(b, f)
		})
		b.Run("memo-redis"+suffix, func(b *testing.B) {
			st, err := redisstore.New(srv.Client(b), redisstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			sh := sharing
			sh.Store = st
			sh.Name += suffix // apart from the values written without the secret
			f, c := memo.Memoize(compute, memo.MaxSize(1), memo.Share(sh))
			defer c.Close()
			cycle(b, f)
		})
	}

	// go-redis/cache: without its local cache, every call reads Redis; with
	// it (TinyLFU, as its README sets up), calls are answered in memory.
	goRedisCache := func(c *cache.Cache) func(int) string {
		ctx := context.Background()
		return func(k int) string {
			var v string
			err := c.Once(&cache.Item{Ctx: ctx, Key: "bench:" + strconv.Itoa(k), Value: &v, TTL: time.Hour,
				Do: func(*cache.Item) (any, error) { return value, nil }})
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	b.Run("go-redis-cache-redis", func(b *testing.B) {
		cycle(b, goRedisCache(cache.New(&cache.Options{Redis: srv.Client(b)})))
	})
	b.Run("go-redis-cache-memory", func(b *testing.B) {
		cycle(b, goRedisCache(cache.New(&cache.Options{Redis: srv.Client(b), LocalCache: cache.NewTinyLFU(keys, time.Hour)})))
	})

	// rueidisaside: its client-side cache (RESP3 tracking) answers in memory.
	b.Run("rueidisaside-memory", func(b *testing.B) {
		c, err := rueidisaside.NewClient(rueidisaside.ClientOption{ClientOption: rueidis.ClientOption{InitAddress: []string{srv.Addr()}}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Client().Close()
		ctx := context.Background()
		cycle(b, func(k int) string {
			v, err := c.Get(ctx, time.Hour, "aside:"+strconv.Itoa(k), func(context.Context, string) (string, error) { return value, nil })
			if err != nil {
				b.Fatal(err)
			}
			return v
		})
	})
}
