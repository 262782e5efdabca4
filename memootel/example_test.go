package memootel_test

import (
	"context"
	"fmt"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/memootel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace/noop"
)

func Example() {
	square, c := memo.Memoize(func(n int) int { return n * n })

	// In a program, the reader is an exporter's (OTLP, Prometheus); the
	// manual reader here lets the example print what it would send.
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	exp, err := memootel.New(provider.Meter("memo"))
	if err != nil {
		panic(err)
	}
	exp.Add("square", c.CacheInfo)

	square(3)
	square(3)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch m.Name {
		case "memo.cache.hits", "memo.cache.misses", "memo.cache.entries":
			p := m.Data.(metricdata.Sum[int64]).DataPoints[0]
			name, _ := p.Attributes.Value(memootel.CacheAttr)
			fmt.Printf("%s{%s} %d %s\n", m.Name, name.AsString(), p.Value, m.Unit)
		}
	}
	// Output:
	// memo.cache.hits{square} 1 {call}
	// memo.cache.misses{square} 1 {call}
	// memo.cache.entries{square} 1 {entry}
}

func ExampleTrace() {
	// A span per execution of lookup, a child of the caller's span; in a
	// program the tracer comes from the TracerProvider you set up.
	tracer := noop.NewTracerProvider().Tracer("memo")
	lookup := func(_ context.Context, id int) (string, error) { return fmt.Sprint("user", id), nil }
	get, c := memo.MemoizeCtx(memootel.Trace(tracer, "lookup", lookup))
	for range 3 {
		get(context.Background(), 7) // one execution, so one span; two hits
	}
	fmt.Println(c.CacheInfo())
	// Output: CacheInfo(hits=2, misses=1, maxsize=128, currsize=1)
}
