package redisstore

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// server is a redis-server of the tests' own, on a loopback port.
type server struct {
	t    *testing.T
	port int
	args []string
	cmd  *exec.Cmd
}

// redisServer returns the path of redis-server, or fails the test saying how
// to install it.
func redisServer(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("these tests start their own redis-server, which is not installed: " +
			"apt-get install redis-server (Debian, Ubuntu; ./test.sh does it when run as root), " +
			"brew install redis (macOS)")
	}
	return path
}

// freePort returns a loopback port that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts a redis-server with extra arguments, stopped at the end
// of the test.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{t: t, port: freePort(t)}
	dir := t.TempDir()
	s.args = append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, extra...)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start starts the server and waits until it answers.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(redisServer(s.t), s.args...)
	s.cmd.Stdout, s.cmd.Stderr = nil, os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer within 10s", s.addr())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill kills the server with SIGKILL and waits for it to be gone.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused server must be able to die
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

func (s *server) stop() { s.kill() }

// pause stops the server with SIGSTOP; resume lets it go on.
func (s *server) pause()  { s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *server) resume() { s.cmd.Process.Signal(syscall.SIGCONT) }

// client returns a client of the server that honours context deadlines.
func (s *server) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// cluster is a Redis Cluster of three masters on loopback ports.
type cluster struct {
	nodes []*server
}

// startCluster starts three redis-servers in cluster mode and joins them,
// each master of a third of the slots.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	cl := &cluster{}
	var addrs []string
	for range 3 {
		dir := t.TempDir()
		n := startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000")
		cl.nodes = append(cl.nodes, n)
		addrs = append(addrs, n.addr())
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
		c := n.client(t)
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
		addrs = append(addrs, n.addr())
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// nodeID returns the cluster node ID of n.
func nodeID(t *testing.T, n *server) string {
	t.Helper()
	c := n.client(t)
	id, err := c.Do(context.Background(), "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// moveSlot moves hash slot slot, with its keys, from node from to node to,
// as redis-cli --cluster reshard does: IMPORTING on the target, MIGRATING on
// the source, MIGRATE of every key, then the new owner announced to all.
func (cl *cluster) moveSlot(t *testing.T, slot int64, from, to *server) {
	t.Helper()
	ctx := context.Background()
	src, dst := from.client(t), to.client(t)
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
		args := []any{"MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(src.Do(ctx, args...).Err())
	}
	for _, n := range cl.nodes {
		must(n.client(t).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
	}
}

// owner returns the node that holds slot, as node 0 sees the cluster.
func (cl *cluster) owner(t *testing.T, slot int64) *server {
	t.Helper()
	shards, err := cl.nodes[0].client(t).ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End {
				for _, n := range cl.nodes {
					for _, node := range sh.Nodes {
						if node.Role == "master" && node.Port == int64(n.port) {
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
