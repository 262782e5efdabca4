package memo

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestOptionsValidated: every invalid option is reported by the constructor,
// with a message that names it, and nothing else panics.
func TestOptionsValidated(t *testing.T) {
	id := func(int) int { return 0 }
	for want, opts := range map[string][]Option{
		"memo: MaxSize(2147483647) is larger than the 2147483646 entries a cache can index; use Unbounded()": {MaxSize(math.MaxInt32)},
		"memo: Shards must be at least 1, got 0":                   {Shards(0)},
		"memo: Shards(16) needs MaxSize of at least 16, got 8":     {MaxSize(8), Shards(16)},
		"memo: TTL must not be negative, got -1ns":                 {TTL(-1)},
		"memo: Window must not be negative, got -1s":               {Window(-time.Second)},
		"memo: StaleWhileRevalidate must not be negative, got -1s": {TTL(time.Second), StaleWhileRevalidate(-time.Second)},
		"memo: CacheErrors must not be negative, got -1m0s":        {CacheErrors(-time.Minute)},
		"memo: Clock was given a nil function (now)":               {Clock(nil)},
		"memo: TTL must not be negative, got -1s":                  {TTL(-time.Second), Window(time.Minute)},
	} {
		assert.PanicsWithValue(t, want, func() { Memoize(id, opts...) })
	}
	_, c := Memoize(id, TTL(time.Second), Window(time.Minute), StaleWhileRevalidate(time.Second), CacheErrors(time.Millisecond))
	assert.Equal(t, Parameters{MaxSize: 128, Window: time.Minute, StaleWhileRevalidate: time.Second, CacheErrors: time.Millisecond, Shards: 1}, c.Parameters())
}

// TestZeroDurationsAreOff: 0, what configuration files write for "off",
// turns each duration option off instead of failing at start-up.
func TestZeroDurationsAreOff(t *testing.T) {
	fn, runs := counted()
	f, c := Memoize(fn, TTL(0), Window(0), StaleWhileRevalidate(0), CacheErrors(0))
	f("k")
	f("k")
	assert.Equal(t, int32(1), runs.Load(), "nothing expires")
	assert.Equal(t, Parameters{MaxSize: 128, Shards: 1}, c.Parameters())
	assert.False(t, c.timed, "no clock is read")

	_, c = Memoize(fn, TTL(0), StaleWhileRevalidate(time.Second))
	assert.Zero(t, c.Parameters().StaleWhileRevalidate, "nothing expires, so nothing is stale")
	_, c = Memoize(fn, Window(time.Minute), TTL(0))
	assert.Equal(t, Parameters{MaxSize: 128, Shards: 1}, c.Parameters(), "the last of TTL and Window wins")
}
