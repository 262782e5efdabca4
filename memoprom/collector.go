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

// metric is one CacheInfo field as a Prometheus metric.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(memo.CacheInfo) float64
}

func counter(name, help string, value func(memo.CacheInfo) float64) metric {
	return metric{prometheus.NewDesc("memo_"+name, help, []string{"cache"}, nil), prometheus.CounterValue, value}
}

func gauge(name, help string, value func(memo.CacheInfo) float64) metric {
	return metric{prometheus.NewDesc("memo_"+name, help, []string{"cache"}, nil), prometheus.GaugeValue, value}
}

// metrics are the exported fields of CacheInfo.
var metrics = []metric{
	counter("hits_total", "Calls answered without running the function.", func(ci memo.CacheInfo) float64 { return float64(ci.Hits) }),
	counter("misses_total", "Calls the cache could not answer from memory.", func(ci memo.CacheInfo) float64 { return float64(ci.Misses) }),
	counter("coalesced_total", "Hits that waited for another caller's execution.", func(ci memo.CacheInfo) float64 { return float64(ci.Coalesced) }),
	counter("evictions_total", "Entries dropped to make room.", func(ci memo.CacheInfo) float64 { return float64(ci.Evictions) }),
	counter("expirations_total", "Entries dropped because they had expired.", func(ci memo.CacheInfo) float64 { return float64(ci.Expirations) }),
	counter("errors_total", "Executions that failed.", func(ci memo.CacheInfo) float64 { return float64(ci.Errors) }),
	counter("exec_seconds_total", "Time spent running the function (with memo.MeasureExecTime).", func(ci memo.CacheInfo) float64 { return ci.ExecTime.Seconds() }),
	counter("store_hits_total", "Executions answered from the shared store.", func(ci memo.CacheInfo) float64 { return float64(ci.StoreHits) }),
	counter("store_misses_total", "Executions that found nothing in the shared store.", func(ci memo.CacheInfo) float64 { return float64(ci.StoreMisses) }),
	counter("store_waits_total", "Store misses answered by another process's execution.", func(ci memo.CacheInfo) float64 { return float64(ci.StoreWaits) }),
	counter("store_errors_total", "Failures of the shared store.", func(ci memo.CacheInfo) float64 { return float64(ci.StoreErrors) }),
	counter("store_rejected_total", "Values read from the shared store that the Secret did not authenticate.", func(ci memo.CacheInfo) float64 { return float64(ci.StoreRejected) }),
	gauge("entries", "Entries in the cache.", func(ci memo.CacheInfo) float64 { return float64(ci.CurrSize) }),
	gauge("max_entries", "The most entries the cache holds; 0 when unbounded.", func(ci memo.CacheInfo) float64 { return float64(ci.MaxSize) }),
	gauge("weight", "Total weight of the entries (with memo.MaxWeight).", func(ci memo.CacheInfo) float64 { return float64(ci.Weight) }),
	gauge("max_weight", "The bound on the total weight; 0 without memo.MaxWeight.", func(ci memo.CacheInfo) float64 { return float64(ci.MaxWeight) }),
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
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
		ci := cc.info()
		for _, m := range metrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(ci), cc.name)
		}
	}
}
