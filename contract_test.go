package memo_test

import (
	"testing"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/storetest"
)

// The tests' Store in memory passes the contract that memo's other tests
// rely on it for. Its stores share nothing, so each subtest gets one store,
// standing for every process.
func TestMemStoreContract(t *testing.T) {
	st := memo.NewMemStore()
	storetest.Run(t, func(*testing.T) memo.Store { return st })
}
