package memcachedstore

import (
	"testing"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/storetest"
	"github.com/stretchr/testify/require"
)

// suite returns the contract's suite on stores that are clients of servers.
func suite(servers ...*server) storetest.Suite {
	return storetest.Suite{
		New: func(t *testing.T) memo.Store {
			st, err := New(client(t, servers...), Options{})
			require.NoError(t, err)
			return st
		},
		LoseChanges: func(t *testing.T, st memo.Store, ns string) {
			// The deletions' counter is evicted.
			s := st.(*Store)
			require.NoError(t, s.client.Delete(s.last(ns)))
		},
	}
}

// The Memcached store passes the Store contract on one server (whose items
// may be up to 2 MiB: the suite stores a value of 1 MiB).
func TestContract(t *testing.T) {
	suite(startServer(t, "-I", "2m")).Run(t)
}

// The Memcached store passes the Store contract on three servers, among
// which the client spreads each namespace's keys.
func TestContractThreeServers(t *testing.T) {
	suite(startServer(t, "-I", "2m"), startServer(t, "-I", "2m"), startServer(t, "-I", "2m")).Run(t)
}
