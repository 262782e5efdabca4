package redisstore

import (
	"testing"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/gomemo/memo/storetest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// keep is the KeepChanges of the contract's stores.
const keep = 500

// loseChanges empties the stream of deletions of every group of ns (XTRIM
// MAXLEN 0), as a trim past a reader's cursor does, so that whichever group
// the deletions so far went to, they are lost.
func loseChanges(t *testing.T, st memo.Store, ns string) {
	s := st.(*Store)
	for i := range s.groups {
		require.NoError(t, s.client.XTrimMaxLen(t.Context(), s.groupNames(ns, i, "").changes(), 0).Err())
	}
}

// suite returns the contract's suite on stores whose clients client makes.
func suite(client func(t *testing.T) redis.UniversalClient) storetest.Suite {
	return storetest.Suite{
		New: func(t *testing.T) memo.Store {
			st, err := New(client(t), Options{KeepChanges: keep})
			require.NoError(t, err)
			return st
		},
		LoseChanges: loseChanges,
	}
}

// The Redis store passes the Store contract on one server, each store of a
// subtest on a client of its own.
func TestContract(t *testing.T) {
	srv := redistest.Start(t)
	suite(func(t *testing.T) redis.UniversalClient { return srv.Client(t) }).Run(t)
}

// The Redis store passes the Store contract on a cluster of three masters,
// where every namespace's operations must stay within one hash slot.
func TestContractCluster(t *testing.T) {
	cl := startCluster(t)
	suite(func(t *testing.T) redis.UniversalClient { return cl.client(t) }).Run(t)
}
