// Command webapp is the article's web app, in Go: a page where a person types
// a query and gets the result of a slow computation, with a panel that shows
// the cache working (answers from memory, from the shared tier and computed,
// the share answered without computing over time, how long the last answer
// took and which tier answered) and what another size would give it (the
// hit ratio memo.EstimateSizes estimates at other sizes, and the time the
// cache saved).
//
//	go run .                      # one process, the in-process cache only
//	go run . -workers 4           # four worker processes behind a proxy,
//	                              # sharing results through a SQLite file
//	go run . -workers 4 -redis localhost:6379   # ... or through Redis
//
// Then open http://localhost:8080. /stats.json gives the panel's numbers and
// /metrics the cache's metrics for Prometheus. With workers, the proxy sends
// the queries to the workers in turn, so a result computed by one is served
// by another from the shared tier, and the page says which worker answered.
// /stats.json and /metrics on the proxy speak for the whole service: the
// panel sums every worker's figures, an answer from the shared tier counting
// as one without computing, and lists each worker's; /metrics serves every
// worker's series, each with a worker label (worker="1" to "4"), so each
// counter only grows from one scrape to the next. A worker that does not
// answer is named in the panel and its series are left out.
//
// The SQLite file lives under the user's cache directory (see -dir), where
// it outlives the checkout, so a query asked in an earlier run is answered
// from the disk; the program says where the file is, and whether an earlier
// run made it, when it starts.
package main

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"html/template"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/memoprom"
	"github.com/gomemo/memo/redisstore"
	"github.com/gomemo/memo/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// analyse is the slow computation behind the page: it hashes the query two
// million times over, a stand-in for a report, a model or a query that takes
// a noticeable time.
func analyse(query string) string {
	sum := sha256.Sum256([]byte(query))
	for range 2_000_000 {
		sum = sha256.Sum256(sum[:])
	}
	return hex.EncodeToString(sum[:8])
}

// app serves one process's page, API and statistics.
type app struct {
	worker  int    // this process's number; 0 without workers
	shared  string // the shared tier: "", "disk" or "redis"
	answer  func(context.Context, string) (string, error)
	cache   *memo.Cache[string, string]
	metrics http.Handler

	fromMemory, fromShared, computed atomic.Int64
	lastTook                         atomic.Int64 // nanoseconds
	lastAt                           atomic.Int64 // Unix milliseconds
}

// probe is how the memoized function tells a request that it ran for it.
type probe struct{ ran atomic.Bool }

type probeKey struct{}

// newApp builds the app on store (nil: in-process cache only).
func newApp(worker int, store memo.Store, shared string) *app {
	a := &app{worker: worker, shared: shared}
	opts := []memo.Option{memo.MaxSize(1000), memo.EstimateSizes(0), memo.MeasureExecTime()}
	if store != nil {
		opts = append(opts, memo.Share(memo.Sharing{Store: store, Name: "analyse", Poll: 200 * time.Millisecond}))
	}
	a.answer, a.cache = memo.MemoizeCtx(func(ctx context.Context, q string) (string, error) {
		if p, ok := ctx.Value(probeKey{}).(*probe); ok {
			p.ran.Store(true)
		}
		return analyse(q), nil
	}, opts...)
	col := memoprom.New()
	col.Add("analyse", a.cache.CacheInfo)
	col.AddAdvice("analyse", a.cache.SizeAdvice)
	reg := prometheus.NewRegistry()
	var r prometheus.Registerer = reg
	if worker > 0 {
		// The proxy serves every worker's series: each says whose it is.
		r = prometheus.WrapRegistererWith(prometheus.Labels{"worker": strconv.Itoa(worker)}, reg)
	}
	r.MustRegister(col)
	a.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return a
}

// handler routes the app's pages.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /api/query", a.query)
	mux.HandleFunc("GET /stats.json", a.stats)
	mux.Handle("GET /metrics", a.metrics)
	return mux
}

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTemplate.Execute(w, struct{ Shared string }{a.shared})
}

// answer is the JSON of one query.
type answer struct {
	Query  string  `json:"query"`
	Result string  `json:"result"`
	Source string  `json:"source"` // memory, disk, redis or computed
	Worker int     `json:"worker"`
	TookMS float64 `json:"took_ms"`
}

func (a *app) query(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		http.Error(w, "memo webapp: the query is empty", http.StatusBadRequest)
		return
	}
	start := time.Now()
	source := "memory"
	inMemory := a.cache.Contains(q)
	p := &probe{}
	result, err := a.answer(context.WithValue(r.Context(), probeKey{}, p), q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	took := time.Since(start)
	switch {
	case p.ran.Load():
		source = "computed"
		a.computed.Add(1)
	case inMemory || a.shared == "":
		a.fromMemory.Add(1)
	default:
		source = a.shared
		a.fromShared.Add(1)
	}
	a.lastTook.Store(int64(took))
	a.lastAt.Store(time.Now().UnixMilli())
	writeJSON(w, answer{q, result, source, a.worker, float64(took.Microseconds()) / 1000})
}

// stats are the panel's figures of one worker (or the one process), or
// their sum over the workers.
type stats struct {
	Worker int            `json:"worker"`          // the worker's number; 0 for the sum, or one process
	Error  string         `json:"error,omitempty"` // why the worker did not answer
	Cache  memo.CacheInfo `json:"cache"`
	// HitRatio is the share of calls answered without running the
	// function: from memory, or from the shared tier.
	HitRatio   float64     `json:"hit_ratio"`
	Saved      int         `json:"executions_saved"` // Hits + StoreHits + StoreWaits
	FromMemory int64       `json:"from_memory"`
	FromShared int64       `json:"from_shared"`
	Computed   int64       `json:"computed"`
	LastTookMS float64     `json:"last_took_ms"`
	LastAt     int64       `json:"last_at_ms"` // when the last answer was given, in Unix milliseconds; 0 before the first
	Advice     memo.Advice `json:"advice"`     // the hit ratio from memory at other sizes, the time saved
}

// panel is the JSON of the panel: the whole service, and each worker.
type panel struct {
	Shared  string  `json:"shared"`
	Total   stats   `json:"total"`
	Workers []stats `json:"workers"`
}

// newPanel sums the statistics of workers.
func newPanel(shared string, workers []stats) panel {
	var t stats
	var calls int
	var hits []float64 // estimated hits at each size of the advice
	for _, w := range workers {
		if w.Error != "" {
			continue
		}
		c, wc := &t.Cache, w.Cache
		c.Hits += wc.Hits
		c.Misses += wc.Misses
		c.MaxSize += wc.MaxSize
		c.Unbounded = c.Unbounded || wc.Unbounded
		c.CurrSize += wc.CurrSize
		c.Evictions += wc.Evictions
		c.Coalesced += wc.Coalesced
		c.Errors += wc.Errors
		c.ExecTime += wc.ExecTime
		c.Expirations += wc.Expirations
		c.Weight += wc.Weight
		c.MaxWeight += wc.MaxWeight
		c.StoreHits += wc.StoreHits
		c.StoreMisses += wc.StoreMisses
		c.StoreWaits += wc.StoreWaits
		c.StoreErrors += wc.StoreErrors
		c.StoreRejected += wc.StoreRejected
		t.FromMemory += w.FromMemory
		t.FromShared += w.FromShared
		t.Computed += w.Computed
		if w.LastAt > t.LastAt {
			t.LastAt, t.LastTookMS = w.LastAt, w.LastTookMS
		}
		// Every worker estimates the same sizes: the sum's estimate at a
		// size is the estimated hits of all over the calls of all.
		if t.Advice.Sizes == nil {
			t.Advice.Sizes = make([]memo.SizeEstimate, len(w.Advice.Sizes))
			hits = make([]float64, len(w.Advice.Sizes))
		}
		for i, e := range w.Advice.Sizes {
			if i < len(hits) {
				t.Advice.Sizes[i].Size = e.Size
				hits[i] += e.HitRatio * float64(w.Advice.Calls)
			}
		}
		calls += w.Advice.Calls
		t.Advice.Saved += w.Advice.Saved
		t.Advice.TimeSaved += w.Advice.TimeSaved
	}
	for i := range t.Advice.Sizes {
		if calls > 0 {
			t.Advice.Sizes[i].HitRatio = hits[i] / float64(calls)
		}
	}
	t.Advice.Calls = calls
	if t.Cache.ExecTime > 0 && t.Cache.Misses > 0 {
		t.Advice.MeanExecTime = t.Cache.ExecTime / time.Duration(t.Cache.Misses)
	}
	t.Saved, t.HitRatio = saved(t.Cache)
	return panel{Shared: shared, Total: t, Workers: workers}
}

// saved returns the calls ci answered without running the function, and
// their share of all calls.
func saved(ci memo.CacheInfo) (int, float64) {
	n := ci.Hits + ci.StoreHits + ci.StoreWaits
	if ci.Hits+ci.Misses == 0 {
		return n, 0
	}
	return n, float64(n) / float64(ci.Hits+ci.Misses)
}

// stats serves the panel of this process alone.
func (a *app) stats(w http.ResponseWriter, r *http.Request) {
	s := stats{
		Worker: a.worker, Cache: a.cache.CacheInfo(),
		FromMemory: a.fromMemory.Load(), FromShared: a.fromShared.Load(), Computed: a.computed.Load(),
		LastTookMS: float64(time.Duration(a.lastTook.Load()).Microseconds()) / 1000,
		LastAt:     a.lastAt.Load(),
		Advice:     a.cache.SizeAdvice(),
	}
	s.Saved, s.HitRatio = saved(s.Cache)
	writeJSON(w, newPanel(a.shared, []stats{s}))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// openStore opens the shared tier: Redis at redisAddr if given, else the
// SQLite file in dir.
func openStore(dir, redisAddr string) (memo.Store, string, func(), error) {
	if redisAddr != "" {
		client := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
		st, err := redisstore.New(client, redisstore.Options{})
		return st, "redis", func() { client.Close() }, err
	}
	st, err := sqlite.Open(dir, sqlite.Options{MaxBytes: 64 << 20})
	if err != nil {
		return nil, "", nil, err
	}
	return st, "disk", func() { st.Close() }, nil
}

// sharedTier describes the shared tier that workers on dir and redisAddr
// use: Redis, or the SQLite file, with whether an earlier run made it.
func sharedTier(dir, redisAddr string) string {
	if redisAddr != "" {
		return "Redis at " + redisAddr
	}
	file := filepath.Join(dir, "memo.db") // the store's file, see sqlite.Open
	if _, err := os.Stat(file); err == nil {
		return file + ", made by an earlier run, whose results it serves"
	}
	return file + ", new"
}

func main() {
	home, err := os.UserCacheDir()
	if err != nil {
		home = os.TempDir()
	}
	addr := flag.String("addr", "localhost:8080", "where to listen")
	workers := flag.Int("workers", 0, "worker processes behind a proxy that takes queries to them in turn and serves their statistics and metrics together; 0 serves from this process alone")
	dir := flag.String("dir", filepath.Join(home, "memo-example-webapp"), "the shared tier's directory, with workers")
	redisAddr := flag.String("redis", "", "share through the Redis at this address instead of the disk, with workers")
	worker := flag.Int("worker", 0, "run as worker number n (the main process starts them)")
	flag.Parse()

	var h http.Handler
	switch {
	case *workers > 0:
		tier := sharedTier(*dir, *redisAddr) // before the workers create the file
		addrs, stop, err := startWorkers(*workers, *dir, *redisAddr)
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
		h = service(addrs)
		log.Printf("%d workers behind http://%s, sharing through %s (-dir puts it elsewhere)", *workers, *addr, tier)
	case *worker > 0:
		st, shared, closeStore, err := openStore(*dir, *redisAddr)
		if err != nil {
			log.Fatal(err)
		}
		defer closeStore()
		h = newApp(*worker, st, shared).handler()
	default:
		h = newApp(0, nil, "").handler()
		log.Printf("serving http://%s", *addr)
	}
	// Serve until interrupted, then shut down, workers included.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	srv := &http.Server{Addr: *addr, Handler: h}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}
