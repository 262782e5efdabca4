package sqlite

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gomemo/memo/internal/holdtest"
)

// other runs this test binary as holdtest's other process in role ("hold"
// or "watch") on the store in dir.
func other(role, dir string) holdtest.Start {
	return func(env ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$", dir)
		cmd.Env = append(append(os.Environ(), "MEMO_SQLITE_CHILD="+role), env...)
		return cmd
	}
}

func TestKilledHolderTakenOver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	took := holdtest.Killed(t, open(t, dir, Options{}), other("hold", dir))
	t.Logf("after kill -9 of the process holding the key, another process computed it %v later (default Lease 2s)", took)
}

func TestLongExecutionRunsOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	holdtest.Long(t, open(t, dir, Options{}), other("hold", dir))
}
