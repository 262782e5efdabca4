package redisstore

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// BenchmarkMixed measures the store under a mixed load on one namespace of
// 10,000 values, nine Gets to one Set, from 16 goroutines per processor: on
// one server, on a Cluster of three masters, and on the Cluster with the
// namespace in one group (one master), in one run, so that they can be
// compared.
//
//	go test -run '^$' -bench Mixed -benchtime 5s ./redisstore
func BenchmarkMixed(b *testing.B) {
	b.Run("server", func(b *testing.B) {
		srv := redistest.Start(b)
		benchMixed(b, srv.Client(b), 0)
	})
	cl := startCluster(b)
	b.Run("cluster", func(b *testing.B) { benchMixed(b, cl.client(b), 0) })
	b.Run("cluster-1-group", func(b *testing.B) { benchMixed(b, cl.client(b), 1) })
}

func benchMixed(b *testing.B, client redis.UniversalClient, groups int) {
	const n = 10_000
	st, err := New(client, Options{Groups: groups})
	require.NoError(b, err)
	ctx := context.Background()
	value := []byte(expected(1))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key " + strconv.Itoa(i)
		require.NoError(b, st.Set(ctx, "bench/0", keys[i], value, time.Time{}))
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			k := keys[rand.IntN(n)]
			var err error
			if i%10 == 0 {
				err = st.Set(ctx, "bench/0", k, value, time.Time{})
			} else {
				_, _, _, err = st.Get(ctx, "bench/0", k)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
