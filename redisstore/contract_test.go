package redisstore

import (
	"strconv"
	"testing"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/gomemo/memo/storetest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// keep is the KeepChanges of the contract's stores.
const keep = 500

// loseChanges deletes more than keep keys through st, so that the stream of
// deletions is trimmed (XADD MAXLEN ~ trims whole nodes of 100 entries) past
// what was deleted before.
func loseChanges(t *testing.T, st memo.Store, ns string) {
	for i := range keep + 200 {
		require.NoError(t, st.Delete(t.Context(), ns, "lose "+strconv.Itoa(i)))
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
