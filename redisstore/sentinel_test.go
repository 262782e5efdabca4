package redisstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// startSentinel starts a Sentinel that monitors master as "main", and
// returns its address.
func startSentinel(t *testing.T, master *redistest.Server) string {
	t.Helper()
	port := redistest.FreePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor main 127.0.0.1 %d 1\n", port, master.Port())
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	path, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is not installed: apt-get install redis-server")
	cmd := exec.Command(path, conf, "--sentinel")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer c.Close()
	await.Soon(t, func() bool {
		_, err := c.GetMasterAddrByName(context.Background(), "main").Result()
		return err == nil
	}, "the Sentinel answers")
	return addr
}

func TestSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := startSentinel(t, master)
	client := func() redis.UniversalClient {
		c := redis.NewUniversalClient(&redis.UniversalOptions{MasterName: "main", Addrs: []string{sentinel}, ContextTimeoutEnabled: true})
		t.Cleanup(func() { c.Close() })
		return c
	}
	var runsA, runsB atomic.Int64
	sh := func(st memo.Store) memo.Option {
		return memo.Share(memo.Sharing{Store: st, Name: "expected", Poll: time.Hour})
	}
	a, ca := memo.Memoize(func(k int) string { runsA.Add(1); return expected(k) }, sh(newStore(t, client())))
	defer ca.Close()
	b, cb := memo.Memoize(func(k int) string { runsB.Add(1); return expected(k) }, sh(newStore(t, client())))
	defer cb.Close()
	for k := range 10 {
		require.Equal(t, expected(k), a(k))
		require.Equal(t, expected(k), b(k))
	}
	assert.Zero(t, runsB.Load(), "b found every key through the Sentinel's master")
	ca.Forget(3)
	await.Soon(t, func() bool { return !cb.Contains(3) }, "b drops 3 when a's Forget is published, long before its Poll (1h)")
	ca.Clear()
	await.Soon(t, func() bool { return cb.Len() == 0 }, "b empties its memory when a's Clear is published")
	assert.Equal(t, expected(4), b(4))
	assert.Equal(t, int64(1), runsB.Load(), "the Clear reached the master")
}
