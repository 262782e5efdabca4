package redisstore

import (
	"context"
	"testing"

	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlotOfAgreesWithRedis compares slotOf with CLUSTER KEYSLOT on a real
// server, for keys with and without hash tags.
func TestSlotOfAgreesWithRedis(t *testing.T) {
	srv := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", t.TempDir()+"/nodes.conf")
	c := srv.Client(t)
	for _, k := range []string{"", "a", "123456789", "memo:{expected/0#64.3.17}:v:x", "{}x", "x{}y{z}", "{a}{b}", "a{b", "a}b{c}", "\xff\x00{\x01}"} {
		want, err := c.ClusterKeySlot(context.Background(), k).Result()
		require.NoError(t, err)
		assert.Equal(t, int(want), slotOf(k), "slot of %q", k)
	}
}
