package redisstore

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cluster is a Redis Cluster of three masters on loopback ports.
type cluster struct {
	nodes []*redistest.Server
}

// startCluster starts three redis-servers in cluster mode and joins them,
// each master of a third of the slots.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	cl := &cluster{}
	var addrs []string
	for range 3 {
		dir := t.TempDir()
		n := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000")
		cl.nodes = append(cl.nodes, n)
		addrs = append(addrs, n.Addr())
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed: it comes with redis-server (apt-get install redis-server)")
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must see the whole cluster, or a client's first
	// commands fail.
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range cl.nodes {
		c := n.Client(t)
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cluster did not come up within 20s: %v %s", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return cl
}

// addrs returns the addresses of the masters.
func (cl *cluster) addrs() []string {
	var addrs []string
	for _, n := range cl.nodes {
		addrs = append(addrs, n.Addr())
	}
	return addrs
}

// client returns a cluster client that honours context deadlines.
func (cl *cluster) client(t testing.TB) *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// nodeID returns the cluster node ID of n.
func nodeID(t testing.TB, n *redistest.Server) string {
	t.Helper()
	c := n.Client(t)
	id, err := c.Do(context.Background(), "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// moveSlot moves hash slot slot, with its keys, from node from to node to,
// as redis-cli --cluster reshard does: IMPORTING on the target, MIGRATING on
// the source, MIGRATE of every key, then the new owner announced to the
// target, the source and the others, in that order (the other way round,
// for a moment the source would send clients to the target, and the target,
// still importing, back to the source). It returns once every node sees the
// new owner, so that a client's reload of the slots finds it wherever it
// asks.
func (cl *cluster) moveSlot(t testing.TB, slot int64, from, to *redistest.Server) {
	t.Helper()
	ctx := context.Background()
	src, dst := from.Client(t), to.Client(t)
	srcID, dstID := nodeID(t, from), nodeID(t, to)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("moving slot %d: %v", slot, err)
		}
	}
	must(dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	must(src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
		must(err)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", "127.0.0.1", to.Port(), "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(src.Do(ctx, args...).Err())
	}
	order := []*redistest.Server{to, from}
	for _, n := range cl.nodes {
		if n != to && n != from {
			order = append(order, n)
		}
	}
	for _, n := range order {
		must(n.Client(t).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
	}
	deadline := time.Now().Add(timeout)
	for _, n := range cl.nodes {
		c := n.Client(t)
		for cl.ownerSeenBy(t, c, slot) != to {
			if time.Now().After(deadline) {
				t.Fatalf("moving slot %d: %s does not see %s as its owner after %v", slot, n.Addr(), to.Addr(), timeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// owner returns the node that holds slot, as node 0 sees the cluster.
func (cl *cluster) owner(t testing.TB, slot int64) *redistest.Server {
	t.Helper()
	return cl.ownerSeenBy(t, cl.nodes[0].Client(t), slot)
}

// ownerSeenBy returns the node that holds slot, as the node c is a client
// of sees the cluster.
func (cl *cluster) ownerSeenBy(t testing.TB, c *redis.Client, slot int64) *redistest.Server {
	t.Helper()
	shards, err := c.ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End {
				for _, n := range cl.nodes {
					for _, node := range sh.Nodes {
						if node.Role == "master" && node.Port == int64(n.Port()) {
							return n
						}
					}
				}
			}
		}
	}
	t.Fatalf("no node holds slot %d", slot)
	return nil
}

// slotsOf returns the slots of the keys that match pattern on every master,
// with the number of keys in each.
func (cl *cluster) slotsOf(t testing.TB, pattern string) map[int64]int {
	t.Helper()
	ctx := context.Background()
	slots := map[int64]int{}
	for _, n := range cl.nodes {
		c := n.Client(t)
		keys, err := c.Keys(ctx, pattern).Result()
		require.NoError(t, err)
		for _, k := range keys {
			slot, err := c.ClusterKeySlot(ctx, k).Result()
			require.NoError(t, err)
			slots[slot]++
		}
	}
	return slots
}

func TestNamespaceSpreadsOverMasters(t *testing.T) {
	cl := startCluster(t)
	st := newStore(t, cl.client(t))
	const n, workers = 30_000, 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := st.Set(context.Background(), "spread/0", "key "+strconv.Itoa(i), []byte("value"), time.Time{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	total := 0
	for i, node := range cl.nodes {
		keys, err := node.Client(t).Keys(context.Background(), values("spread/0")).Result()
		require.NoError(t, err)
		t.Logf("master %d (%s): %d of the namespace's %d values", i, node.Addr(), len(keys), n)
		assert.InEpsilon(t, n/3, len(keys), 0.1, "master %d holds a third of the values, within 10%%", i)
		total += len(keys)
	}
	assert.Equal(t, n, total)
}

func TestReshardUnderLoad(t *testing.T) {
	cl := startCluster(t)
	const procs, keys = 3, 2000
	var children []*childProc
	for range procs {
		children = append(children, startChild(t, "load", cl.addrs(), keys))
	}
	time.Sleep(time.Second) // the namespace fills
	before := cl.slotsOf(t, values("load/0"))
	owners := map[int64]*redistest.Server{}
	for slot := range before {
		owners[slot] = cl.owner(t, slot)
	}

	// Move 600 of master 0's slots to master 1, and 600 of master 1's to
	// master 2, under load.
	cli, err := exec.LookPath("redis-cli")
	require.NoError(t, err)
	start := time.Now()
	for _, move := range [][2]int{{0, 1}, {1, 2}} {
		from, to := cl.nodes[move[0]], cl.nodes[move[1]]
		out, err := exec.Command(cli, "--cluster", "reshard", from.Addr(), "--cluster-from", nodeID(t, from), "--cluster-to", nodeID(t, to),
			"--cluster-slots", "600", "--cluster-yes").CombinedOutput()
		require.NoError(t, err, "redis-cli --cluster reshard: %s", out)
	}
	t.Logf("2 reshards of 600 slots each in %v", time.Since(start).Round(time.Millisecond))
	moved := 0
	for slot := range before {
		if cl.owner(t, slot) != owners[slot] {
			moved++
		}
	}
	t.Logf("%d of the %d slots that hold the namespace's values moved", moved, len(before))
	require.Positive(t, moved, "the reshard moved slots of the namespace")
	time.Sleep(500 * time.Millisecond)

	for i, ch := range children {
		require.NoError(t, ch.in.Close())
		var r loadReport
		require.NoError(t, json.Unmarshal([]byte(ch.line(t)), &r))
		require.NoError(t, ch.cmd.Wait())
		t.Logf("process %d: %d calls, %d wrong; store hits %d, misses %d, waits %d, errors %d",
			i, r.Calls, r.Wrong, r.Info.StoreHits, r.Info.StoreMisses, r.Info.StoreWaits, r.Info.StoreErrors)
		assert.Positive(t, r.Calls)
		assert.Positive(t, r.Info.StoreHits)
		assert.Zero(t, r.Wrong, "no wrong value")
		assert.Zero(t, r.Info.StoreErrors, "no error from Redis: the client follows MOVED and ASK")
	}
}
