package redisstore

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// cluster is a Redis Cluster of three masters on loopback ports.
type cluster struct {
	nodes []*redistest.Server
}

// startCluster starts three redis-servers in cluster mode and joins them,
// each master of a third of the slots.
func startCluster(t *testing.T) *cluster {
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

// client returns a cluster client that honours context deadlines.
func (cl *cluster) client(t *testing.T) *redis.ClusterClient {
	var addrs []string
	for _, n := range cl.nodes {
		addrs = append(addrs, n.Addr())
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// nodeID returns the cluster node ID of n.
func nodeID(t *testing.T, n *redistest.Server) string {
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
// the source, MIGRATE of every key, then the new owner announced to all.
func (cl *cluster) moveSlot(t *testing.T, slot int64, from, to *redistest.Server) {
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
	for _, n := range cl.nodes {
		must(n.Client(t).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
	}
}

// owner returns the node that holds slot, as node 0 sees the cluster.
func (cl *cluster) owner(t *testing.T, slot int64) *redistest.Server {
	t.Helper()
	shards, err := cl.nodes[0].Client(t).ClusterShards(context.Background()).Result()
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
func (cl *cluster) slotsOf(t *testing.T, pattern string) map[int64]int {
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
