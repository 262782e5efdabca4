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

// New returns an Exporter of no caches yet, whose instruments are registered
// on meter. It fails if meter refuses an instrument or the callback.
func New(meter metric.Meter) (*Exporter, error) {
	e := &Exporter{}
	// One instrument per number of CacheInfo.Measures, in its order: a
	// float for a time, an integer otherwise.
	measures := memo.CacheInfo{}.Measures()
	insts := make([]metric.Observable, len(measures))
	for i, m := range measures {
		name, unit, desc := "memo.cache."+m.Name, metric.WithUnit(m.Unit), metric.WithDescription(m.Help)
		var err error
		switch {
		case m.Unit == "s":
			insts[i], err = meter.Float64ObservableCounter(name, unit, desc)
		case m.Level:
			insts[i], err = meter.Int64ObservableUpDownCounter(name, unit, desc)
		default:
			insts[i], err = meter.Int64ObservableCounter(name, unit, desc)
		}
		if err != nil {
			return nil, err
		}
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
	all := append(insts, ratio, saved)
	e.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		e.mu.Lock()
		caches := append([]cache(nil), e.caches...)
		advisedCaches := append([]advised(nil), e.advised...)
		e.mu.Unlock()
		for _, c := range caches {
			for i, m := range c.info().Measures() {
				switch inst := insts[i].(type) {
				case metric.Float64Observable:
					o.ObserveFloat64(inst, m.Value, c.attrs)
				case metric.Int64Observable:
					o.ObserveInt64(inst, int64(m.Value), c.attrs)
				}
			}
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
