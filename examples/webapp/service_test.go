package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gomemo/memo"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewPanel(t *testing.T) {
	one := stats{
		Worker:     1,
		Cache:      memo.CacheInfo{Hits: 2, Misses: 2, MaxSize: 1000, CurrSize: 2, ExecTime: 3 * time.Second, StoreHits: 1, StoreMisses: 1},
		FromMemory: 2, FromShared: 1, Computed: 1, LastTookMS: 9, LastAt: 200,
		Advice: memo.Advice{Sizes: []memo.SizeEstimate{{Size: 500, HitRatio: 0.5}, {HitRatio: 1}}, Calls: 4, Saved: 2, TimeSaved: time.Second},
	}
	two := stats{
		Worker:     2,
		Cache:      memo.CacheInfo{Hits: 0, Misses: 2, MaxSize: 1000, CurrSize: 2, ExecTime: time.Second, StoreHits: 0, StoreMisses: 1, StoreWaits: 1},
		FromShared: 1, Computed: 1, LastTookMS: 7, LastAt: 100,
		Advice: memo.Advice{Sizes: []memo.SizeEstimate{{Size: 500, HitRatio: 0}, {HitRatio: 0.5}}, Calls: 2},
	}
	down := stats{Worker: 3, Error: "memo webapp: connection refused"}
	p := newPanel("disk", []stats{one, two, down})

	assert.Equal(t, "disk", p.Shared)
	assert.Equal(t, []stats{one, two, down}, p.Workers, "each worker as it answered")
	total := p.Total
	assert.Equal(t, 0, total.Worker)
	assert.Empty(t, total.Error, "the workers that answered are summed")
	assert.Equal(t, memo.CacheInfo{Hits: 2, Misses: 4, MaxSize: 2000, CurrSize: 4, ExecTime: 4 * time.Second, StoreHits: 1, StoreMisses: 2, StoreWaits: 1}, total.Cache)
	assert.Equal(t, 4, total.Saved, "2 hits from memory, 1 from the store, 1 waited for another process")
	assert.InDelta(t, 4.0/6, total.HitRatio, 1e-12, "answered without computing, of 6 calls")
	assert.Equal(t, int64(2), total.FromMemory)
	assert.Equal(t, int64(2), total.FromShared)
	assert.Equal(t, int64(2), total.Computed)
	assert.Equal(t, int64(200), total.LastAt, "the latest answer of all")
	assert.Equal(t, 9.0, total.LastTookMS)
	assert.Equal(t, memo.Advice{
		// At 500 entries, 2 of worker 1's 4 calls and none of worker 2's 2 hit;
		// unbounded, 4 and 1.
		Sizes: []memo.SizeEstimate{{Size: 500, HitRatio: 2.0 / 6}, {HitRatio: 5.0 / 6}},
		Calls: 6, Saved: 2, MeanExecTime: time.Second, TimeSaved: time.Second,
	}, total.Advice)

	alone := newPanel("", nil)
	assert.Equal(t, stats{}, alone.Total, "no worker: nothing summed, no ratio")
}

// deadAddr returns a loopback address where nothing answers: a worker that
// died.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// scrape gets the metrics at url and parses them with Prometheus's text
// parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// series names each series of a family by its labels, as in
// {cache="analyse",worker="2"}, with its value.
func series(t *testing.T, f *dto.MetricFamily) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		sort.Strings(labels)
		name := "{" + strings.Join(labels, ",") + "}"
		_, twice := out[name]
		require.False(t, twice, "%s%s is served twice", f.GetName(), name)
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			out[name] = m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			out[name] = m.GetGauge().GetValue()
		default:
			t.Fatalf("%s is a %s: the test reads counters and gauges", f.GetName(), f.GetType())
		}
	}
	return out
}

// sum adds up a family's series.
func sum(t *testing.T, f *dto.MetricFamily) float64 {
	var total float64
	for _, v := range series(t, f) {
		total += v
	}
	return total
}

// Three worker processes behind the proxy: each scrape of /metrics through
// it has the series of every worker, told apart by their worker label, so
// that every counter only grows from one scrape to the next; /stats.json
// sums them all.
func TestServiceThroughProxy(t *testing.T) {
	const n, rounds = 3, 3
	srv, addrs := workers(t, n, "")

	t.Run("metrics", func(t *testing.T) {
		var scrapes []map[string]*dto.MetricFamily
		calls := 0
		for round := range rounds {
			// One key asked n+1 times in turn: one worker computes it, the
			// others find it on the disk, the first finds it in memory.
			for range n + 1 {
				var a answer
				get(t, fmt.Sprintf("%s/api/query?q=round-%d", srv.URL, round), &a)
				calls++
			}
			families := scrape(t, srv.URL+"/metrics")
			scrapes = append(scrapes, families)
			var excerpt []string
			for _, name := range []string{"memo_hits_total", "memo_misses_total", "memo_store_hits_total"} {
				for s, v := range series(t, families[name]) {
					excerpt = append(excerpt, fmt.Sprintf("%s%s %g", name, s, v))
				}
			}
			sort.Strings(excerpt)
			t.Logf("scrape %d through the proxy, after %d calls:\n\t%s", round+1, calls, strings.Join(excerpt, "\n\t"))

			require.Contains(t, families, "memo_misses_total")
			for name, f := range families {
				workersSeen := map[string]bool{}
				for _, m := range f.GetMetric() {
					labels := map[string]string{}
					for _, l := range m.GetLabel() {
						labels[l.GetName()] = l.GetValue()
					}
					assert.Equal(t, "analyse", labels["cache"], name)
					require.Contains(t, labels, "worker", "%s: every series the proxy serves says whose it is", name)
					workersSeen[labels["worker"]] = true
				}
				assert.Equal(t, map[string]bool{"1": true, "2": true, "3": true}, workersSeen, "%s: every worker in every scrape", name)
			}
			assert.Equal(t, float64(calls), sum(t, families["memo_hits_total"])+sum(t, families["memo_misses_total"]),
				"each call counted once, by the worker that took it")
			assert.Equal(t, float64(round+1), sum(t, families["memo_hits_total"]), "one answer from memory per round")
			assert.Equal(t, float64((round+1)*(n-1)), sum(t, families["memo_store_hits_total"]), "n-1 answers from the disk per round")
		}
		for i := 1; i < len(scrapes); i++ {
			grew := false
			for name, f := range scrapes[i] {
				if f.GetType() != dto.MetricType_COUNTER {
					continue
				}
				before := series(t, scrapes[i-1][name])
				for s, v := range series(t, f) {
					require.Contains(t, before, s, "%s%s is in every scrape", name, s)
					assert.GreaterOrEqual(t, v, before[s], "%s%s went back from scrape %d to %d", name, s, i, i+1)
					grew = grew || v > before[s]
				}
			}
			assert.True(t, grew, "the calls between scrapes %d and %d moved counters", i, i+1)
		}
	})

	t.Run("stats", func(t *testing.T) {
		var p panel
		get(t, srv.URL+"/stats.json", &p)
		assert.Equal(t, "disk", p.Shared)
		require.Len(t, p.Workers, n)
		var hits, misses, storeHits int
		var fromMemory, fromShared, computed int64
		for i, w := range p.Workers {
			assert.Equal(t, i+1, w.Worker)
			assert.Empty(t, w.Error)
			hits += w.Cache.Hits
			misses += w.Cache.Misses
			storeHits += w.Cache.StoreHits
			fromMemory += w.FromMemory
			fromShared += w.FromShared
			computed += w.Computed
		}
		total := p.Total
		assert.Equal(t, rounds*(n+1), total.Cache.Hits+total.Cache.Misses, "every call of the metrics subtest")
		assert.Equal(t, []int{hits, misses, storeHits}, []int{total.Cache.Hits, total.Cache.Misses, total.Cache.StoreHits})
		assert.Equal(t, []int64{fromMemory, fromShared, computed}, []int64{total.FromMemory, total.FromShared, total.Computed})
		assert.Equal(t, []int64{rounds, rounds * (n - 1), rounds}, []int64{total.FromMemory, total.FromShared, total.Computed})
		assert.Equal(t, rounds*n, total.Saved, "the answers from the disk count as answers without computing")
		assert.InDelta(t, float64(n)/float64(n+1), total.HitRatio, 1e-12)
	})

	t.Run("a worker down", func(t *testing.T) {
		dead := deadAddr(t)
		srv := httptest.NewServer(service(append(addrs[:n:n], dead)))
		defer srv.Close()

		var p panel
		get(t, srv.URL+"/stats.json", &p)
		require.Len(t, p.Workers, n+1)
		assert.Equal(t, n+1, p.Workers[n].Worker)
		assert.Contains(t, p.Workers[n].Error, dead, "the panel says which worker does not answer")
		assert.Equal(t, rounds*(n+1), p.Total.Cache.Hits+p.Total.Cache.Misses, "the others are summed")

		families := scrape(t, srv.URL+"/metrics")
		assert.Len(t, series(t, families["memo_misses_total"]), n, "the others' series are served")

		// Every query is answered: the dead worker's turns go to the next.
		for i := range 2 * (n + 1) {
			var a answer
			get(t, fmt.Sprintf("%s/api/query?q=down-%d", srv.URL, i), &a)
		}
	})
}
