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

	var s stats
	get(t, srv.URL+"/stats.json", &s)
	assert.Equal(t, 1, s.Cache.Hits)
	assert.Equal(t, 1, s.Cache.Misses)
	assert.Equal(t, 0.5, s.HitRatio)
	assert.Equal(t, 1, s.Saved)
	assert.Equal(t, int64(1), s.Computed)
	assert.Equal(t, int64(1), s.FromMemory)
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

// workers starts two worker processes sharing a SQLite file, or the Redis
// at redisAddr if not empty, behind a round-robin proxy, stopped at the end
// of the test.
func workers(t *testing.T, redisAddr string) *httptest.Server {
	t.Helper()
	addrs, stop, err := startWorkers(2, t.TempDir(), redisAddr)
	require.NoError(t, err)
	t.Cleanup(stop)
	srv := httptest.NewServer(roundRobin(addrs))
	t.Cleanup(srv.Close)
	return srv
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
			srv := workers(t, addr)
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
		assert.Equal(t, "0.500", ratio)
		points, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById('line').getAttribute('points')`))
		require.NoError(t, err)
		assert.NotEmpty(t, points, "the chart draws the hit ratio")
		labels, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelectorAll('#sizes .size-bar').length === 6 && document.getElementById('sizes').textContent`))
		require.NoError(t, err)
		t.Logf("one process: the size chart reads %q", labels)
		assert.Contains(t, labels, "unbounded: 0.50", "the chart draws the estimate at every size")

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
		srv := workers(t, "")
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible("#go")))
		source1, worker1 := ask(t, ctx, "across workers")
		assert.Equal(t, "computed", source1)
		// The page's own statistics requests go through the round robin
		// too, so press until another worker answers.
		for range 8 {
			source, worker := ask(t, ctx, "across workers")
			if worker == worker1 {
				assert.Equal(t, "memory", source, "worker %s again: from its memory", worker)
				continue
			}
			t.Logf("workers: worker %s answered %q, then worker %s answered %q", worker1, source1, worker, source)
			assert.Equal(t, "disk", source, "another worker found the result in the shared tier")
			return
		}
		t.Fatal("no other worker answered in 8 presses")
	})
}
