// Command webapp is the article's web app, in Go: a page where a person types
// a query and gets the result of a slow computation, with a panel that shows
// the cache working (hits, misses, hit ratio over time, executions saved, how
// long the last answer took and which tier answered) and what another size
// would give it (the hit ratio memo.EstimateSizes estimates at other sizes,
// and the time the cache saved).
//
//	go run .                      # one process, the in-process cache only
//	go run . -workers 4           # four worker processes behind a round-robin proxy,
//	                              # sharing results through a SQLite file
//	go run . -workers 4 -redis localhost:6379   # ... or through Redis
//
// Then open http://localhost:8080. /stats.json gives the panel's numbers and
// /metrics the cache's metrics for Prometheus. With workers, the panel says
// which worker answered: a result computed by one is served by another from
// the shared tier. The SQLite file lives under the user's cache directory
// (see -dir), where it outlives the checkout, so a query asked in an earlier
// run is answered from the disk; the program says where the file is, and
// whether an earlier run made it, when it starts.
package main

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
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
	reg.MustRegister(col)
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
	writeJSON(w, answer{q, result, source, a.worker, float64(took.Microseconds()) / 1000})
}

// stats is the JSON of the panel.
type stats struct {
	Worker     int            `json:"worker"`
	Shared     string         `json:"shared"`
	Cache      memo.CacheInfo `json:"cache"`
	HitRatio   float64        `json:"hit_ratio"`
	Saved      int            `json:"executions_saved"`
	FromMemory int64          `json:"from_memory"`
	FromShared int64          `json:"from_shared"`
	Computed   int64          `json:"computed"`
	LastTookMS float64        `json:"last_took_ms"`
	Advice     memo.Advice    `json:"advice"` // the hit ratio at other sizes, the time saved
}

func (a *app) stats(w http.ResponseWriter, r *http.Request) {
	ci := a.cache.CacheInfo()
	writeJSON(w, stats{
		Worker: a.worker, Shared: a.shared, Cache: ci, HitRatio: ci.HitRatio(),
		Saved:      ci.Hits + ci.StoreHits + ci.StoreWaits,
		FromMemory: a.fromMemory.Load(), FromShared: a.fromShared.Load(), Computed: a.computed.Load(),
		LastTookMS: float64(time.Duration(a.lastTook.Load()).Microseconds()) / 1000,
		Advice:     a.cache.SizeAdvice(),
	})
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

// startWorkers starts n worker processes of this program on free loopback
// ports and returns their addresses once each answers, and a function that
// stops them.
func startWorkers(n int, dir, redisAddr string) ([]string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	var addrs []string
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
	for i := 1; i <= n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, err
		}
		addr := l.Addr().String()
		l.Close()
		cmd := exec.Command(self, "-worker", strconv.Itoa(i), "-addr", addr, "-dir", dir, "-redis", redisAddr)
		cmd.Env = append(os.Environ(), "MEMO_WEBAPP_WORKER=1") // for a test binary standing in for this program
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, err
		}
		cmds = append(cmds, cmd)
		addrs = append(addrs, addr)
	}
	for _, addr := range addrs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/stats.json")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				stop()
				return nil, nil, fmt.Errorf("memo webapp: worker at %s did not answer within 30s", addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return addrs, stop, nil
}

// roundRobin is a reverse proxy that sends each query to the next worker.
// Queries and the page's other requests (statistics, every second) take
// turns apart, so that the statistics do not decide which worker answers
// the next query.
func roundRobin(addrs []string) http.Handler {
	var queries, others atomic.Uint64
	return &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		turn := &others
		if r.In.URL.Path == "/api/query" {
			turn = &queries
		}
		r.SetURL(&url.URL{Scheme: "http", Host: addrs[int(turn.Add(1)-1)%len(addrs)]})
	}}
}

func main() {
	home, err := os.UserCacheDir()
	if err != nil {
		home = os.TempDir()
	}
	addr := flag.String("addr", "localhost:8080", "where to listen")
	workers := flag.Int("workers", 0, "worker processes behind a round-robin proxy; 0 serves from this process alone")
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
		h = roundRobin(addrs)
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
