package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/gomemo/memo/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary stands in for the program when the app starts workers.
func TestMain(m *testing.M) {
	if os.Getenv("MEMO_WEBAPP_WORKER") != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// get fetches url and decodes its JSON into v.
func get(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func TestHandlers(t *testing.T) {
	srv := httptest.NewServer(newApp(0, nil, "").handler())
	defer srv.Close()

	var first, second answer
	get(t, srv.URL+"/api/query?q=hello", &first)
	get(t, srv.URL+"/api/query?q=hello", &second)
	assert.Equal(t, analyse("hello"), first.Result)
	assert.Equal(t, "computed", first.Source)
	assert.Equal(t, first.Result, second.Result)
	assert.Equal(t, "memory", second.Source)

	var p panel
	get(t, srv.URL+"/stats.json", &p)
	require.Len(t, p.Workers, 1)
	assert.Equal(t, p.Workers[0], p.Total, "the sum of one process is that process")
	s := p.Total
	assert.Equal(t, 1, s.Cache.Hits)
	assert.Equal(t, 1, s.Cache.Misses)
	assert.Equal(t, 0.5, s.HitRatio)
	assert.Equal(t, 1, s.Saved)
	assert.Equal(t, int64(1), s.Computed)
	assert.Equal(t, int64(1), s.FromMemory)
	assert.Positive(t, s.LastAt)
	require.Len(t, s.Advice.Sizes, 6, "the hit ratio at 500 to 8000 entries, and unbounded")
	assert.Equal(t, 500, s.Advice.Sizes[0].Size)
	assert.Equal(t, 0.5, s.Advice.Sizes[5].HitRatio, "one call of two was for a key seen before")
	assert.Equal(t, 1, s.Advice.Saved)

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `memo_hits_total{cache="analyse"} 1`)
	assert.Contains(t, string(body), `memo_size_hit_ratio{cache="analyse",size="unbounded"} 0.5`)

	resp, err = http.Get(srv.URL + "/api/query?q=")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	resp, err = http.Get(srv.URL + "/")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `<button id="go"`)
}

// workers starts n worker processes sharing a SQLite file, or the Redis at
// redisAddr if not empty, behind the service's proxy, stopped at the end of
// the test. It returns the proxy and the workers' addresses.
func workers(t *testing.T, n int, redisAddr string) (*httptest.Server, []string) {
	t.Helper()
	addrs, stop, err := startWorkers(n, t.TempDir(), redisAddr)
	require.NoError(t, err)
	t.Cleanup(stop)
	srv := httptest.NewServer(service(addrs))
	t.Cleanup(srv.Close)
	return srv, addrs
}

// Two workers behind the round robin share results through the disk or
// through Redis: the second worker finds what the first computed.
func TestWorkersShare(t *testing.T) {
	for _, tc := range []struct {
		tier  string
		redis func(t *testing.T) string // the Redis address; nil for the disk
	}{
		{"disk", nil},
		{"redis", func(t *testing.T) string { return redistest.Start(t).Addr() }},
	} {
		t.Run(tc.tier, func(t *testing.T) {
			addr := ""
			if tc.redis != nil {
				addr = tc.redis(t)
			}
			srv, _ := workers(t, 2, addr)
			var first, second answer
			get(t, srv.URL+"/api/query?q=via-"+tc.tier, &first)
			get(t, srv.URL+"/api/query?q=via-"+tc.tier, &second)
			assert.Equal(t, "computed", first.Source)
			assert.Equal(t, tc.tier, second.Source, "the other worker found it in the shared tier")
			assert.NotEqual(t, first.Worker, second.Worker)
			assert.Equal(t, first.Result, second.Result)
		})
	}
}

func TestSharedTierSaysWhereAndWhether(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "memo.db")
	assert.Equal(t, file+", new", sharedTier(dir, ""))
	st, _, closeStore, err := openStore(dir, "")
	require.NoError(t, err)
	closeStore()
	require.Equal(t, file, st.(*sqlite.Store).Path())
	assert.Equal(t, file+", made by an earlier run, whose results it serves", sharedTier(dir, ""))
	assert.Equal(t, "Redis at localhost:6379", sharedTier(dir, "localhost:6379"))
}

// browser returns a chromedp context on a headless Chromium, failing the test
// with how to install one if there is none.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("the browser test needs Chromium: apt-get install chromium (Debian; ./test.sh does it when run as root), or Google Chrome")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return ctx
}

// ask types q into the page, presses the button, and returns what the page
// then shows: the source and the worker.
func ask(t *testing.T, ctx context.Context, q string) (source, worker string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(tctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = ''`),
		chromedp.SendKeys("#q", q),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('source').textContent = ''`),
		chromedp.Click("#go"),
	))
	_, err := chromedp.Run(tctx, chromedp.Poll[bool](`['computed', 'memory', 'disk', 'redis'].includes(document.getElementById('source').textContent)`))
	require.NoError(t, err)
	source, err = chromedp.Run(tctx, chromedp.Text("#source"))
	require.NoError(t, err)
	worker, err = chromedp.Run(tctx, chromedp.Text("#worker"))
	require.NoError(t, err)
	return strings.TrimSpace(source), strings.TrimSpace(worker)
}

func TestBrowser(t *testing.T) {
	ctx := browser(t)

	t.Run("one process", func(t *testing.T) {
		srv := httptest.NewServer(newApp(0, nil, "").handler())
		defer srv.Close()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible("#go")))
		source, _ := ask(t, ctx, "browser")
		assert.Equal(t, "computed", source)
		source, _ = ask(t, ctx, "browser")
		assert.Equal(t, "memory", source, "pressed again: served from the cache")
		answer, err := chromedp.Run(ctx, chromedp.Text("#answer"))
		require.NoError(t, err)
		assert.Equal(t, analyse("browser"), answer)
		hits, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById('hits').textContent === '1' && document.getElementById('hits').textContent`))
		require.NoError(t, err)
		ratio, err := chromedp.Run(ctx, chromedp.Text("#ratio"))
		require.NoError(t, err)
		t.Logf("one process: the page read %q, then %q; panel: hits %s, hit ratio %s", "computed", source, hits, ratio)
		assert.Equal(t, "50.0 %", ratio)
		points, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById('line') && document.getElementById('line').getAttribute('points')`))
		require.NoError(t, err)
		assert.NotEmpty(t, points, "the chart draws the hit ratio")
		labels, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelectorAll('#sizes .size-bar').length === 6 && document.getElementById('sizes').textContent`))
		require.NoError(t, err)
		t.Logf("one process: the size chart reads %q", labels)
		assert.Contains(t, labels, "50.0 %unbounded", "the chart draws the estimate at every size, the unbounded one last")

		// An empty query is refused, and the page says why.
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(tctx,
			chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = '  '`),
			chromedp.Click("#go"),
		))
		_, err = chromedp.Run(tctx, chromedp.Poll[bool](`document.getElementById('source').textContent === 'error'`))
		require.NoError(t, err, "the page leaves the refusal of an empty query on %q", "working...")
		answer, err = chromedp.Run(tctx, chromedp.Text("#answer"))
		require.NoError(t, err)
		assert.Equal(t, "memo webapp: the query is empty", answer)
	})

	t.Run("workers", func(t *testing.T) {
		srv, addrs := workers(t, 2, "")
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible("#go")))
		// The queries take turns: worker A computes, worker B finds the
		// result on the disk, worker A finds it in its memory.
		source1, worker1 := ask(t, ctx, "across workers")
		source2, worker2 := ask(t, ctx, "across workers")
		source3, worker3 := ask(t, ctx, "across workers")
		t.Logf("workers: worker %s answered %q, worker %s %q, worker %s %q", worker1, source1, worker2, source2, worker3, source3)
		assert.Equal(t, []string{"computed", "disk", "memory"}, []string{source1, source2, source3})
		assert.NotEqual(t, worker1, worker2, "another worker found the result in the shared tier")
		assert.Equal(t, worker1, worker3)

		// The panel shows the whole service, each worker, and their sum.
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('answers').textContent === '3'`, chromedp.WithPollingTimeout(10*time.Second)))
		require.NoError(t, err, "the panel counts the 3 answers of both workers")
		type panelText struct {
			Scope   string
			Summary map[string]string   // the figures above the table
			Workers []map[string]string // the table's rows, by column
			Total   map[string]string   // its last row
		}
		shown, err := chromedp.Run(ctx, chromedp.Evaluate[panelText](`(() => {
			const row = (r) => Object.fromEntries([...r.cells].map((c) => [c.className, c.textContent]));
			const text = (id) => document.getElementById(id).textContent;
			return {
				Scope: text('scope'),
				Summary: Object.fromEntries(['answers', 'from-memory', 'from-shared', 'computed', 'ratio'].map((id) => [id, text(id)])),
				Workers: [...document.querySelectorAll('#workers tbody tr')].map(row),
				Total: row(document.getElementById('total-row')),
			};
		})()`))
		require.NoError(t, err)
		t.Logf("workers: the panel reads %+v", shown)
		assert.Equal(t, "The service: all 2 workers", shown.Scope)
		require.Len(t, shown.Workers, 2)
		assert.Equal(t, []string{"worker 1", "worker 2"}, []string{shown.Workers[0]["name"], shown.Workers[1]["name"]})
		for _, col := range []string{"answers", "from-memory", "from-shared", "computed", "entries"} {
			var sum int
			for _, w := range shown.Workers {
				n, err := strconv.Atoi(w[col])
				require.NoError(t, err, "column %s of %s", col, w["name"])
				sum += n
			}
			assert.Equal(t, strconv.Itoa(sum), shown.Total[col], "the sum of column %s", col)
			if summary, ok := shown.Summary[col]; ok {
				assert.Equal(t, shown.Total[col], summary, "the service's %s", col)
			}
		}
		assert.Equal(t, map[string]string{"answers": "3", "from-memory": "1", "from-shared": "1", "computed": "1", "ratio": "66.7 %"}, shown.Summary,
			"the answer from the disk counts as one without computing")
		assert.Equal(t, "66.7 %", shown.Total["ratio"])

		// Both charts have their axes: a scale from 0 to 100 % with its
		// title, and a titled horizontal axis with its marks.
		axes, err := chromedp.Run(ctx, chromedp.Evaluate[map[string][]string](`(() => {
			const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
			return {
				chartY: texts('#chart .y-tick'), chartX: texts('#chart .x-tick'), chartTitles: texts('#chart .x-title, #chart .y-title'),
				sizesY: texts('#sizes .y-tick'), sizesX: texts('#sizes .x-tick'), sizesTitles: texts('#sizes .x-title, #sizes .y-title'),
			};
		})()`))
		require.NoError(t, err)
		t.Logf("workers: the charts' axes read %v", axes)
		for _, chart := range []string{"chart", "sizes"} {
			assert.Equal(t, []string{"0 %", "25 %", "50 %", "75 %", "100 %"}, axes[chart+"Y"], "the scale of #%s", chart)
		}
		assert.Equal(t, []string{"60", "50", "40", "30", "20", "10", "now"}, axes["chartX"])
		assert.Equal(t, []string{"seconds ago", "of all calls"}, axes["chartTitles"])
		assert.Equal(t, []string{"500", "1000 (now)", "2000", "4000", "8000", "unbounded"}, axes["sizesX"])
		assert.Equal(t, []string{"entries in each worker's cache", "estimated hit ratio"}, axes["sizesTitles"])

		// A third worker that does not answer: the panel names it and says
		// what its sum covers.
		dead := deadAddr(t)
		down := httptest.NewServer(service(append(addrs[:2:2], dead)))
		defer down.Close()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(down.URL), chromedp.WaitVisible("#go")))
		scope, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector('#workers td.error') && document.getElementById('scope').textContent`, chromedp.WithPollingTimeout(10*time.Second)))
		require.NoError(t, err, "the panel shows the worker that does not answer")
		assert.Equal(t, "The service: the 2 of 3 workers that answer", scope)
		row, err := chromedp.Run(ctx, chromedp.Text("#workers tbody tr:nth-child(3)"))
		require.NoError(t, err)
		assert.Contains(t, row, "worker 3")
		assert.Contains(t, row, "does not answer")
		assert.Contains(t, row, dead)
		answers, err := chromedp.Run(ctx, chromedp.Text("#answers"))
		require.NoError(t, err)
		assert.Equal(t, "3", answers, "the sum of the workers that answer")
	})
}
