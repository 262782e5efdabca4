package memootel

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// collect reads every measurement from reader, as name -> attributes -> value.
func collect(t *testing.T, reader *sdkmetric.ManualReader) (map[string]map[attribute.Distinct]float64, map[string]metricdata.Metrics) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	values := map[string]map[attribute.Distinct]float64{}
	metrics := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			metrics[m.Name] = m
			vs := map[attribute.Distinct]float64{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					vs[p.Attributes.Equivalent()] = float64(p.Value)
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					vs[p.Attributes.Equivalent()] = p.Value
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					vs[p.Attributes.Equivalent()] = p.Value
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			values[m.Name] = vs
		}
	}
	return values, metrics
}

func named(name string) attribute.Distinct {
	s := attribute.NewSet(attribute.String(CacheAttr, name))
	return s.Equivalent()
}

func setup(t *testing.T) (*Exporter, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, provider.Shutdown(context.Background())) })
	exp, err := New(provider.Meter("memo"))
	require.NoError(t, err)
	return exp, reader
}

func TestExporter(t *testing.T) {
	exp, reader := setup(t)
	square, sq := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(2))
	square(1)
	square(1)
	square(2)
	square(3) // evicts 1
	_, other := memo.Memoize(func(s string) int { return len(s) }, memo.Unbounded())
	exp.Add("square", sq.CacheInfo)
	exp.Add("len", other.CacheInfo)

	values, metrics := collect(t, reader)
	want := map[string][2]float64{ // square, len
		"memo.cache.hits":          {1, 0},
		"memo.cache.misses":        {3, 0},
		"memo.cache.evictions":     {1, 0},
		"memo.cache.entries":       {2, 0},
		"memo.cache.entries.limit": {2, 0},
		"memo.cache.exec.time":     {0, 0},
	}
	for name, w := range want {
		require.Equal(t, w[0], values[name][named("square")], "%s of square", name)
		require.Equal(t, w[1], values[name][named("len")], "%s of len", name)
	}
	require.Len(t, values, len(memo.CacheInfo{}.Measures()), "every CacheInfo number, and nothing from AddAdvice")
	require.Contains(t, values, "memo.cache.store.rejected")

	// Counts are monotonic sums, levels are not: what OTel backends need to
	// tell a rate from a level.
	hits := metrics["memo.cache.hits"].Data.(metricdata.Sum[int64])
	require.True(t, hits.IsMonotonic)
	require.Equal(t, metricdata.CumulativeTemporality, hits.Temporality)
	require.Equal(t, "{call}", metrics["memo.cache.hits"].Unit)
	require.False(t, metrics["memo.cache.entries"].Data.(metricdata.Sum[int64]).IsMonotonic)
	require.Equal(t, "s", metrics["memo.cache.exec.time"].Unit)

	// Each collection reads CacheInfo again.
	square(2)
	values, _ = collect(t, reader)
	require.Equal(t, 2.0, values["memo.cache.hits"][named("square")])

	// Clear resets the counters, and the exporter reports what CacheInfo says.
	sq.Clear()
	values, _ = collect(t, reader)
	require.Equal(t, 0.0, values["memo.cache.hits"][named("square")])
	require.Equal(t, 0.0, values["memo.cache.entries"][named("square")])
}

func TestExporterErrorsWeightTime(t *testing.T) {
	exp, reader := setup(t)
	f, c := memo.MemoizeErr(func(n int) (int, error) {
		time.Sleep(time.Millisecond)
		if n < 0 {
			return 0, errors.New("negative")
		}
		return n, nil
	}, memo.MeasureExecTime(), memo.MaxWeight(10, func(int, int) int { return 1 }))
	f(1)
	f(-1)
	exp.Add("f", c.CacheInfo)
	values, _ := collect(t, reader)
	require.Equal(t, 1.0, values["memo.cache.errors"][named("f")])
	require.Equal(t, 1.0, values["memo.cache.weight"][named("f")])
	require.Equal(t, 10.0, values["memo.cache.weight.limit"][named("f")])
	require.GreaterOrEqual(t, values["memo.cache.exec.time"][named("f")], 0.002, "two executions of at least 1ms")
}

func TestExporterAdvice(t *testing.T) {
	exp, reader := setup(t)
	square, sq := memo.Memoize(func(n int) int { return n * n }, memo.MaxSize(4), memo.EstimateSizes(0))
	for range 2 {
		for n := range 6 {
			square(n)
		}
	}
	exp.AddAdvice("square", sq.SizeAdvice)
	values, metrics := collect(t, reader)
	ratios := values["memo.cache.size.hit_ratio"]
	at := func(size string) attribute.Distinct {
		s := attribute.NewSet(attribute.String(CacheAttr, "square"), attribute.String(SizeAttr, size))
		return s.Equivalent()
	}
	require.Equal(t, 0.0, ratios[at("4")])
	require.Equal(t, 0.5, ratios[at("8")])
	require.Equal(t, 0.5, ratios[at("unbounded")])
	require.Len(t, ratios, len(sq.SizeAdvice().Sizes))
	_, isGauge := metrics["memo.cache.size.hit_ratio"].Data.(metricdata.Gauge[float64])
	require.True(t, isGauge)
	require.Contains(t, values["memo.cache.saved.time"], named("square"))
	require.NotContains(t, values, "memo.cache.hits", "AddAdvice alone adds no CacheInfo")
}

func TestExporterClose(t *testing.T) {
	exp, reader := setup(t)
	_, c := memo.Memoize(func(n int) int { return n })
	read := 0
	exp.Add("c", func() memo.CacheInfo { read++; return c.CacheInfo() })
	collect(t, reader)
	require.Equal(t, 1, read)
	require.NoError(t, exp.Close())
	require.NoError(t, exp.Close(), "a second Close does nothing")
	values, _ := collect(t, reader)
	require.Equal(t, 1, read, "a closed exporter reads no cache")
	require.Empty(t, values)
}

func TestTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tracer := tp.Tracer("test")
	f, _ := memo.MemoizeCtx(Trace(tracer, "lookup", func(_ context.Context, n int) (int, error) {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return 2 * n, nil
	}))
	ctx, parent := tracer.Start(context.Background(), "request")
	for range 3 {
		v, err := f(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, 2, v)
	}
	_, err := f(ctx, -1)
	require.Error(t, err)
	parent.End()

	var spans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "lookup" {
			spans = append(spans, s)
		}
	}
	require.Len(t, spans, 2, "one span per execution: the two hits make none")
	for _, s := range spans {
		require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "a child of the caller's span")
	}
	require.Equal(t, codes.Unset, spans[0].Status().Code)
	require.Equal(t, codes.Error, spans[1].Status().Code)
	require.Equal(t, "negative", spans[1].Status().Description)
}

func TestTracePanic(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	f, _ := memo.MemoizeCtx(Trace(tp.Tracer("test"), "boom", func(context.Context, int) (int, error) { panic("boom") }))
	require.Panics(t, func() { f(context.Background(), 1) })
	require.Len(t, rec.Ended(), 1, "the span ends despite the panic")
	require.Equal(t, codes.Error, rec.Ended()[0].Status().Code)
}
