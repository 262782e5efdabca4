// Package memootel exports the counters of memo caches through the
// OpenTelemetry metrics API, as module memoprom does to Prometheus: an
// Exporter registers observable instruments on a Meter and reads each cache's
// CacheInfo when the SDK collects, with the cache's name as the attribute
// memo.cache.name. It sets no global provider; give it the Meter you choose.
//
//	exp, err := memootel.New(provider.Meter("memo"))
//	exp.Add("render", renderCache.CacheInfo)
//
// The instruments follow OpenTelemetry's conventions: dotted names under
// memo.cache, units in UCUM ("{call}", "s"), counts as observable counters,
// the entries and the weight (and their bounds) as observable up-down
// counters, which add up across caches, and the size advice of
// memo.EstimateSizes as gauges. Counters restart from 0 when a cache is
// cleared (Clear resets CacheInfo); a cumulative reader passes that on as
// the value reported, which backends read as a reset.
//
// Trace wraps a function before it is memoized, so that each execution (each
// miss, not each hit) is a span.
package memootel

import (
	"context"
	"strconv"
	"sync"

	"github.com/gomemo/memo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// CacheAttr is the attribute that names the cache of each measurement.
const CacheAttr = "memo.cache.name"

// SizeAttr is the attribute of memo.cache.size.hit_ratio that says at which
// size the hit ratio was estimated: the number of entries, or "unbounded".
const SizeAttr = "memo.cache.size"

// Exporter reports the caches added to it through the instruments it
// registered on a Meter. It is safe for concurrent use.
type Exporter struct {
	mu      sync.Mutex
	caches  []cache
	advised []advised
	reg     metric.Registration
}

type cache struct {
	attrs metric.MeasurementOption
	info  func() memo.CacheInfo
}

type advised struct {
	name   string
	attrs  metric.MeasurementOption
	advice func() memo.Advice
}

// counter is one field of CacheInfo exported as an instrument.
type counter struct {
	name, unit, desc string
	value            func(memo.CacheInfo) int64
	updown           bool // an up-down counter: a level, not a count
}

// counters are the integer fields of CacheInfo, in the order memoprom
// exports them.
var counters = []counter{
	{"memo.cache.hits", "{call}", "Calls answered without running the function.", func(ci memo.CacheInfo) int64 { return int64(ci.Hits) }, false},
	{"memo.cache.misses", "{call}", "Calls the cache could not answer from memory.", func(ci memo.CacheInfo) int64 { return int64(ci.Misses) }, false},
	{"memo.cache.coalesced", "{call}", "Hits that waited for another caller's execution.", func(ci memo.CacheInfo) int64 { return int64(ci.Coalesced) }, false},
	{"memo.cache.evictions", "{entry}", "Entries dropped to make room.", func(ci memo.CacheInfo) int64 { return int64(ci.Evictions) }, false},
	{"memo.cache.expirations", "{entry}", "Entries dropped because they had expired.", func(ci memo.CacheInfo) int64 { return int64(ci.Expirations) }, false},
	{"memo.cache.errors", "{execution}", "Executions that failed.", func(ci memo.CacheInfo) int64 { return int64(ci.Errors) }, false},
	{"memo.cache.store.hits", "{execution}", "Executions answered from the shared store.", func(ci memo.CacheInfo) int64 { return int64(ci.StoreHits) }, false},
	{"memo.cache.store.misses", "{execution}", "Executions that found nothing in the shared store.", func(ci memo.CacheInfo) int64 { return int64(ci.StoreMisses) }, false},
	{"memo.cache.store.waits", "{execution}", "Store misses answered by another process's execution.", func(ci memo.CacheInfo) int64 { return int64(ci.StoreWaits) }, false},
	{"memo.cache.store.errors", "{error}", "Failures of the shared store.", func(ci memo.CacheInfo) int64 { return int64(ci.StoreErrors) }, false},
	{"memo.cache.entries", "{entry}", "Entries in the cache.", func(ci memo.CacheInfo) int64 { return int64(ci.CurrSize) }, true},
	{"memo.cache.entries.limit", "{entry}", "The most entries the cache holds; 0 when unbounded.", func(ci memo.CacheInfo) int64 { return int64(ci.MaxSize) }, true},
	{"memo.cache.weight", "1", "Total weight of the entries (with memo.MaxWeight).", func(ci memo.CacheInfo) int64 { return int64(ci.Weight) }, true},
	{"memo.cache.weight.limit", "1", "The bound on the total weight; 0 without memo.MaxWeight.", func(ci memo.CacheInfo) int64 { return int64(ci.MaxWeight) }, true},
}

// New returns an Exporter of no caches yet, whose instruments are registered
// on meter. It fails if meter refuses an instrument or the callback.
func New(meter metric.Meter) (*Exporter, error) {
	e := &Exporter{}
	ints := make([]metric.Int64Observable, len(counters))
	var all []metric.Observable
	for i, c := range counters {
		var err error
		if c.updown {
			ints[i], err = meter.Int64ObservableUpDownCounter(c.name, metric.WithUnit(c.unit), metric.WithDescription(c.desc))
		} else {
			ints[i], err = meter.Int64ObservableCounter(c.name, metric.WithUnit(c.unit), metric.WithDescription(c.desc))
		}
		if err != nil {
			return nil, err
		}
		all = append(all, ints[i])
	}
	exec, err := meter.Float64ObservableCounter("memo.cache.exec.time", metric.WithUnit("s"),
		metric.WithDescription("Time spent running the function (with memo.MeasureExecTime)."))
	if err != nil {
		return nil, err
	}
	ratio, err := meter.Float64ObservableGauge("memo.cache.size.hit_ratio", metric.WithUnit("1"),
		metric.WithDescription("Estimated hit ratio of the cache at the size memo.cache.size (memo.EstimateSizes)."))
	if err != nil {
		return nil, err
	}
	saved, err := meter.Float64ObservableGauge("memo.cache.saved.time", metric.WithUnit("s"),
		metric.WithDescription("Estimated time the cache saved its callers: mean execution time times hits (with memo.MeasureExecTime)."))
	if err != nil {
		return nil, err
	}
	all = append(all, exec, ratio, saved)
	e.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		e.mu.Lock()
		caches := append([]cache(nil), e.caches...)
		advisedCaches := append([]advised(nil), e.advised...)
		e.mu.Unlock()
		for _, c := range caches {
			ci := c.info()
			for i, m := range counters {
				o.ObserveInt64(ints[i], m.value(ci), c.attrs)
			}
			o.ObserveFloat64(exec, ci.ExecTime.Seconds(), c.attrs)
		}
		for _, a := range advisedCaches {
			adv := a.advice()
			for _, s := range adv.Sizes {
				size := "unbounded"
				if s.Size > 0 {
					size = strconv.Itoa(s.Size)
				}
				o.ObserveFloat64(ratio, s.HitRatio, metric.WithAttributes(attribute.String(CacheAttr, a.name), attribute.String(SizeAttr, size)))
			}
			o.ObserveFloat64(saved, adv.TimeSaved.Seconds(), a.attrs)
		}
		return nil
	}, all...)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Add adds a cache under name: info is its CacheInfo method, as in
// e.Add("render", cache.CacheInfo).
func (e *Exporter) Add(name string, info func() memo.CacheInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.caches = append(e.caches, cache{metric.WithAttributeSet(attribute.NewSet(attribute.String(CacheAttr, name))), info})
}

// AddAdvice adds the size advice of a cache under name: advice is its
// SizeAdvice method, as in e.AddAdvice("render", cache.SizeAdvice). The
// cache's CacheInfo is added apart, with Add.
func (e *Exporter) AddAdvice(name string, advice func() memo.Advice) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advised = append(e.advised, advised{name, metric.WithAttributeSet(attribute.NewSet(attribute.String(CacheAttr, name))), advice})
}

// Close unregisters the Exporter's callback: its caches are no longer read
// or reported. It may be called more than once.
func (e *Exporter) Close() error {
	e.mu.Lock()
	reg := e.reg
	e.reg = nil
	e.mu.Unlock()
	if reg == nil {
		return nil
	}
	return reg.Unregister()
}

// Trace returns fn with a span around each of its calls, named name, started
// from tracer with the context fn is given. Memoize what it returns, and the
// spans are the executions: a miss that runs fn makes one, a hit none. Under
// memo.MemoizeCtx the execution's context carries the values of the call
// that started it, so its span is a child of that caller's span; callers
// that join the execution share it. A returned error is recorded on the span
// and sets its status; a panic ends the span, marked as an error, before it
// goes on.
func Trace[K comparable, V any](tracer trace.Tracer, name string, fn func(context.Context, K) (V, error)) func(context.Context, K) (V, error) {
	if tracer == nil || fn == nil {
		panic("memootel: Trace was given a nil tracer or function")
	}
	return func(ctx context.Context, k K) (v V, err error) {
		ctx, span := tracer.Start(ctx, name)
		returned := false
		defer func() {
			switch {
			case !returned:
				span.SetStatus(codes.Error, "panic")
			case err != nil:
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
		v, err = fn(ctx, k)
		returned = true
		return v, err
	}
}
