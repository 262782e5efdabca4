package memo

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheInfoString(t *testing.T) {
	for _, tc := range []struct {
		name string
		ci   CacheInfo
		want string
	}{
		{"python's example", CacheInfo{Hits: 1, Misses: 1, MaxSize: 256, CurrSize: 1}, "CacheInfo(hits=1, misses=1, maxsize=256, currsize=1)"},
		{"unbounded", CacheInfo{Hits: 28, Misses: 16, Unbounded: true, CurrSize: 16}, "CacheInfo(hits=28, misses=16, maxsize=unbounded, currsize=16)"},
		{"zero", CacheInfo{}, "CacheInfo(hits=0, misses=0, maxsize=0, currsize=0)"},
		{"extra fields not printed", CacheInfo{Evictions: 3, Coalesced: 2, Errors: 1, ExecTime: time.Second}, "CacheInfo(hits=0, misses=0, maxsize=0, currsize=0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.ci.String())
		})
	}
}

func TestHitRatio(t *testing.T) {
	assert.Zero(t, CacheInfo{}.HitRatio())
	assert.Equal(t, 0.75, CacheInfo{Hits: 3, Misses: 1}.HitRatio())
	assert.Equal(t, 0.0, CacheInfo{Misses: 5}.HitRatio())
}

func TestCacheInfoJSON(t *testing.T) {
	b, err := json.Marshal(CacheInfo{Hits: 1, Misses: 2, MaxSize: 3, CurrSize: 2, Evictions: 4, Coalesced: 5, Errors: 6, ExecTime: 7, Expirations: 8,
		Weight: 13, MaxWeight: 14, StoreHits: 9, StoreMisses: 10, StoreWaits: 11, StoreErrors: 12, StoreRejected: 15})
	require.NoError(t, err)
	assert.JSONEq(t, `{"hits":1,"misses":2,"maxsize":3,"unbounded":false,"currsize":2,"evictions":4,"coalesced":5,"errors":6,"exec_time_ns":7,"expirations":8,
		"weight":13,"maxweight":14,"store_hits":9,"store_misses":10,"store_waits":11,"store_errors":12,"store_rejected":15}`, string(b))
}

func TestExecTimeCounted(t *testing.T) {
	release := make(chan struct{})
	f, c := Memoize(func(n int) int { <-release; return n }, MeasureExecTime())
	within(t, timeout, func() {
		close(release)
		f(1)
		f(1)
	})
	first := c.CacheInfo().ExecTime
	assert.Positive(t, first)
	f(2)
	assert.Greater(t, c.CacheInfo().ExecTime, first, "time accumulates over executions")
	assert.True(t, c.Parameters().MeasureExecTime)
}

func TestExecTimeOffByDefault(t *testing.T) {
	f, c := Memoize(func(n int) int { time.Sleep(time.Millisecond); return n })
	f(1)
	assert.Zero(t, c.CacheInfo().ExecTime)
	assert.False(t, c.Parameters().MeasureExecTime)
}

func TestMeasuresCoverEveryField(t *testing.T) {
	// Each number of the snapshot a value of its own: field i holds i+1.
	var ci CacheInfo
	v := reflect.ValueOf(&ci).Elem()
	want := map[float64]string{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		switch f.Type {
		case reflect.TypeFor[int]():
			v.Field(i).SetInt(int64(i + 1))
			want[float64(i+1)] = f.Name
		case reflect.TypeFor[time.Duration]():
			v.Field(i).SetInt(int64(i+1) * int64(time.Second))
			want[float64(i+1)] = f.Name
		case reflect.TypeFor[bool]():
			require.Equal(t, "Unbounded", f.Name, "a field Measures leaves out")
		default:
			t.Fatalf("CacheInfo.%s: a field of type %v that Measures does not know", f.Name, f.Type)
		}
	}
	names := map[string]bool{}
	for _, m := range ci.Measures() {
		field, ok := want[m.Value]
		require.True(t, ok, "%s: %v is no field's value", m.Name, m.Value)
		delete(want, m.Value)
		assert.False(t, names[m.Name], "%s twice", m.Name)
		names[m.Name] = true
		assert.Regexp(t, `^[a-z]+(\.[a-z]+)*$`, m.Name, field)
		assert.NotEmpty(t, m.Unit, m.Name)
		assert.Regexp(t, `^[A-Z].*\.$`, m.Help, m.Name)
		assert.Equal(t, field == "CurrSize" || field == "MaxSize" || field == "Weight" || field == "MaxWeight", m.Level, m.Name)
	}
	assert.Empty(t, want, "fields Measures leaves out")
	assert.Equal(t, names, func() map[string]bool {
		n := map[string]bool{}
		for _, m := range (CacheInfo{}).Measures() {
			n[m.Name] = true
		}
		return n
	}(), "the same names for every snapshot")
}
