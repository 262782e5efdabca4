package redisstore

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gomemo/memo/internal/holdtest"
	"github.com/gomemo/memo/redisstore/redistest"
)

// other runs this test binary as holdtest's other process in role ("hold"
// or "watch") on the Redis at addrs (a server, or a Cluster's masters).
func other(role string, addrs ...string) holdtest.Start {
	return func(env ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "MEMO_REDIS_CHILD="+role, "MEMO_REDIS_ADDR="+strings.Join(addrs, ",")), env...)
		return cmd
	}
}

func TestKilledHolderTakenOver(t *testing.T) {
	srv := redistest.Start(t)
	took := holdtest.Killed(t, newStore(t, srv.Client(t)), other("hold", srv.Addr()))
	t.Logf("after kill -9 of the process holding the key, another process computed it %v later (default Lease 2s)", took)
}

func TestLongExecutionRunsOnce(t *testing.T) {
	srv := redistest.Start(t)
	holdtest.Long(t, newStore(t, srv.Client(t)), other("hold", srv.Addr()))
}
