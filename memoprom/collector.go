// Package memoprom exports the counters of memo caches to Prometheus: a
// Collector that reads each cache's CacheInfo when Prometheus scrapes, with
// the cache's name as a label. It registers nothing globally; register it
// where you choose.
//
//	col := memoprom.New()
//	col.Add("render", renderCache.CacheInfo)
//	prometheus.MustRegister(col)
//
// Counters restart from 0 when a cache is cleared (Clear resets CacheInfo),
// which Prometheus's rate and increase read as a counter reset.
//
// A cache built with memo.EstimateSizes can also export its size advice:
// the estimated hit ratio at each size, and the time it saved.
//
//	col.AddAdvice("render", renderCache.SizeAdvice)
package memoprom

import (
	"strconv"
	"strings"
	"sync"

	"github.com/gomemo/memo"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector of the caches added to it. It is safe
// for concurrent use.
type Collector struct {
	mu      sync.Mutex
	caches  []cache
	advised []advised
}

type advised struct {
	name   string
	advice func() memo.Advice
}

type cache struct {
	name string
	info func() memo.CacheInfo
}

// New returns a Collector of no caches yet.
func New() *Collector { return &Collector{} }

// Add adds a cache under name: info is its CacheInfo method, as in
// c.Add("render", cache.CacheInfo).
func (c *Collector) Add(name string, info func() memo.CacheInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.caches = append(c.caches, cache{name, info})
}

// AddAdvice adds the size advice of a cache under name: advice is its
// SizeAdvice method, as in c.AddAdvice("render", cache.SizeAdvice). The
// cache's CacheInfo is added apart, with Add.
func (c *Collector) AddAdvice(name string, advice func() memo.Advice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advised = append(c.advised, advised{name, advice})
}

var (
	hitRatioDesc = prometheus.NewDesc("memo_size_hit_ratio",
		"Estimated hit ratio of the cache at size entries (memo.EstimateSizes); size=\"unbounded\" for no bound.",
		[]string{"cache", "size"}, nil)
	savedDesc = prometheus.NewDesc("memo_saved_seconds",
		"Estimated time the cache saved its callers: mean execution time times hits (with memo.MeasureExecTime).",
		[]string{"cache"}, nil)
)

// descs are the metrics of CacheInfo.Measures, in its order: the name
// under memo_ in snake case, with Prometheus's unit suffix for a time and
// _total for a count.
var descs = func() []*prometheus.Desc {
	var d []*prometheus.Desc
	for _, m := range (memo.CacheInfo{}).Measures() {
		name := "memo_" + strings.ReplaceAll(m.Name, ".", "_")
		if m.Unit == "s" {
			name += "_seconds"
		}
		if !m.Level {
			name += "_total"
		}
		d = append(d, prometheus.NewDesc(name, m.Help, []string{"cache"}, nil))
	}
	return d
}()

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
	ch <- hitRatioDesc
	ch <- savedDesc
}

// Collect implements prometheus.Collector: one CacheInfo snapshot per cache,
// and one SizeAdvice per cache added with AddAdvice.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	caches := append([]cache(nil), c.caches...)
	advisedCaches := append([]advised(nil), c.advised...)
	c.mu.Unlock()
	for _, ac := range advisedCaches {
		a := ac.advice()
		for _, e := range a.Sizes {
			size := "unbounded"
			if e.Size > 0 {
				size = strconv.Itoa(e.Size)
			}
			ch <- prometheus.MustNewConstMetric(hitRatioDesc, prometheus.GaugeValue, e.HitRatio, ac.name, size)
		}
		ch <- prometheus.MustNewConstMetric(savedDesc, prometheus.GaugeValue, a.TimeSaved.Seconds(), ac.name)
	}
	for _, cc := range caches {
		for i, m := range cc.info().Measures() {
			kind := prometheus.CounterValue
			if m.Level {
				kind = prometheus.GaugeValue
			}
			ch <- prometheus.MustNewConstMetric(descs[i], kind, m.Value, cc.name)
		}
	}
}
