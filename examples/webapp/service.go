package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

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
// Queries and the page's other requests (the page itself, its icon) take
// turns apart, so that loading the page does not decide which worker
// answers the next query. A worker that refuses the connection (it died)
// is passed over.
func roundRobin(addrs []string) http.Handler {
	var queries, others atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			turn := &others
			if r.In.URL.Path == "/api/query" {
				turn = &queries
			}
			r.SetURL(&url.URL{Scheme: "http", Host: addrs[int(turn.Add(1)-1)%len(addrs)]})
		},
		Transport: passOver(addrs),
	}
}

// passOver is a transport that sends a request without a body to the next
// worker when the one chosen refuses the connection: that worker never got
// it. It tries each worker once.
type passOver []string

// RoundTrip implements http.RoundTripper.
func (addrs passOver) RoundTrip(r *http.Request) (*http.Response, error) {
	first := slices.Index(addrs, r.URL.Host)
	try := r
	for i := 1; ; i++ {
		resp, err := http.DefaultTransport.RoundTrip(try)
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || op.Op != "dial" || r.ContentLength != 0 || first < 0 || i == len(addrs) {
			return resp, err
		}
		try = r.Clone(r.Context())
		try.URL.Host = addrs[(first+i)%len(addrs)]
		try.Host = try.URL.Host
	}
}

// service is what the main process serves in front of the workers at
// addrs: the panel's statistics and the metrics of all the workers at once,
// and everything else from the workers in turn.
func service(addrs []string) http.Handler {
	gather := make(prometheus.Gatherers, len(addrs))
	for i, addr := range addrs {
		gather[i] = workerMetrics(addr)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{
		ErrorLog:      log.Default(),
		ErrorHandling: promhttp.ContinueOnError, // a worker that does not answer leaves out its series alone
	}))
	mux.HandleFunc("GET /stats.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, servicePanel(addrs))
	})
	mux.Handle("/", roundRobin(addrs))
	return mux
}

// workerClient asks the workers for their statistics and metrics.
var workerClient = &http.Client{Timeout: 5 * time.Second}

// getWorker fetches path from the worker at addr.
func getWorker(addr, path string) (*http.Response, error) {
	resp, err := workerClient.Get("http://" + addr + path)
	if err != nil {
		return nil, fmt.Errorf("memo webapp: the worker at %s does not answer: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("memo webapp: the worker at %s answered %s with %s", addr, path, resp.Status)
	}
	return resp, nil
}

// workerMetrics gathers the metrics of the worker at its address, each
// series labelled with the worker's number by the worker itself.
type workerMetrics string

// Gather implements prometheus.Gatherer.
func (addr workerMetrics) Gather() ([]*dto.MetricFamily, error) {
	resp, err := getWorker(string(addr), "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("memo webapp: the metrics of the worker at %s: %w", addr, err)
	}
	out := make([]*dto.MetricFamily, 0, len(families))
	for _, f := range families {
		out = append(out, f)
	}
	return out, nil
}

// servicePanel asks every worker at addrs for its statistics at once and
// sums them. A worker that does not answer is in the panel with the error.
func servicePanel(addrs []string) panel {
	workers := make([]stats, len(addrs))
	shared := make([]string, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			workers[i] = stats{Worker: i + 1}
			resp, err := getWorker(addr, "/stats.json")
			if err != nil {
				workers[i].Error = err.Error()
				return
			}
			defer resp.Body.Close()
			var p panel
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				workers[i].Error = fmt.Sprintf("memo webapp: the statistics of the worker at %s: %v", addr, err)
				return
			}
			if len(p.Workers) != 1 {
				workers[i].Error = fmt.Sprintf("memo webapp: the worker at %s sent the statistics of %d workers, not its own", addr, len(p.Workers))
				return
			}
			workers[i], shared[i] = p.Workers[0], p.Shared
		})
	}
	wg.Wait()
	tier := ""
	for _, s := range shared {
		if s != "" {
			tier = s
		}
	}
	return newPanel(tier, workers)
}
