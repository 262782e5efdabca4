package sqlite

import (
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/storetest"
	"github.com/stretchr/testify/require"
)

// The disk store passes the Store contract, each store of a subtest a handle
// of its own on one database, as each process has.
func TestContract(t *testing.T) {
	dir := t.TempDir()
	storetest.Suite{
		New: func(t *testing.T) memo.Store { return open(t, dir, Options{}) },
		LoseChanges: func(t *testing.T, st memo.Store, ns string) {
			// Deletions older than keepChanges are pruned by a sweep.
			s := st.(*Store)
			_, err := s.db.Exec("UPDATE changes SET at = at - ?", 2*keepChanges.Milliseconds())
			require.NoError(t, err)
			s.writes.Store(0)
			require.NoError(t, s.Set(t.Context(), ns, "sweep", []byte("v"), time.Time{}))
		},
	}.Run(t)
}
