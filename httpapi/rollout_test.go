package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/text"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/bench/pdfgen"
	"github.com/quirehq/quire/httpapi"
	"github.com/quirehq/quire/metrics"
	"github.com/quirehq/quire/persistence"
)

const testAdminToken = "qa_rollout-test"

// rolloutServer is the API over a real node (store, PDF engine, text
// extractor, ledger), served on a loopback port.
func rolloutServer(tb testing.TB) (*httptest.Server, *node.Node) {
	tb.Helper()
	srv, n, _ := apiServer(tb, httpapi.Config{})
	return srv, n
}

// apiServer is rolloutServer with cfg's limits, and the node's data dir.
func apiServer(tb testing.TB, cfg httpapi.Config) (*httptest.Server, *node.Node, string) {
	tb.Helper()
	n, dir := startTestNodeDir(tb, "rollout-test")
	cfg.Backend, cfg.AdminToken, cfg.MaxUploadBytes, cfg.Log = n, testAdminToken, 64<<20, slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(httpapi.New(cfg))
	tb.Cleanup(srv.Close)
	return srv, n, dir
}

// startTestNode starts a real node on its own (store, PDF engine, text
// extractor, ledger).
func startTestNode(tb testing.TB, name string) *node.Node {
	tb.Helper()
	n, _ := startTestNodeDir(tb, name)
	return n
}

// testReaderMemoryMB is the memory a test node's PDF reader may use.
const testReaderMemoryMB = 128

// startTestNodeDir is startTestNode that also returns the node's data dir.
func startTestNodeDir(tb testing.TB, name string) (*node.Node, string) {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	dir := tb.TempDir()
	store, err := persistence.Open(dir, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	// A reader may use 128 MiB (not the default 512), so that a bomb is
	// refused quickly (TestProblemCodes).
	engine, err := pdf.NewEngine(pdf.Config{Instances: 2, CacheDir: pdf.DefaultCacheDir(), MemoryLimitMB: testReaderMemoryMB})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = engine.Close() })
	n, err := node.Start(tb.Context(), node.Config{
		Name: name, Store: store, Engine: engine, Extractors: extract.NewRegistry(text.New(engine)),
		Concurrency: 2, Log: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Close)
	return n, dir
}

func call(tb testing.TB, srv *httptest.Server, token, method, path string, body io.Reader, ct string) *http.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, srv.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func form(tb testing.TB, file []byte) (*bytes.Buffer, string) {
	tb.Helper()
	return uploadForm(tb, file, "doc.pdf", nil) // limits_test.go
}

// counters reads the rollout series of /metrics: name{labels} -> value.
func counters(tb testing.TB) map[string]float64 {
	tb.Helper()
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf)
	out := map[string]float64{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "quire_rollout_requests_total{") && !strings.HasPrefix(line, "quire_jobs_created_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			tb.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestRolloutMetrics: the requests of the job entries are counted by route,
// cohort and outcome, and the jobs they create by route and cohort.
func TestRolloutMetrics(t *testing.T) {
	srv, n := rolloutServer(t)
	acct, err := n.CreateAccount(t.Context(), "metrics", 1000) // number 1: cohort 0-9
	if err != nil {
		t.Fatal(err)
	}
	key := acct.APIKey
	var pdfBuf bytes.Buffer
	if err := pdfgen.Generate(&pdfBuf, 2, 0); err != nil {
		t.Fatal(err)
	}
	setPolicy := func(async bool, pct int) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"async_enabled": async, "percentage": pct, "size_threshold_mb": 10})
		if res := call(t, srv, testAdminToken, http.MethodPut, "/v1/admin/rollout", bytes.NewReader(b), "application/json"); res.StatusCode != http.StatusOK {
			t.Fatalf("PUT /v1/admin/rollout: %s", res.Status)
		}
	}
	const (
		syncOK          = `quire_rollout_requests_total{route="sync",cohort="0-9",outcome="ok"}`
		syncClientErr   = `quire_rollout_requests_total{route="sync",cohort="0-9",outcome="client_error"}`
		asyncOK         = `quire_rollout_requests_total{route="async",cohort="0-9",outcome="ok"}`
		asyncServerErr  = `quire_rollout_requests_total{route="async",cohort="0-9",outcome="server_error"}`
		syncJobCreated  = `quire_jobs_created_total{route="sync",cohort="0-9"}`
		asyncJobCreated = `quire_jobs_created_total{route="async",cohort="0-9"}`
	)
	before := counters(t)

	steps := []struct {
		name         string
		async        bool
		pct          int
		path         string
		file         []byte
		status       int
		route        string
		wantIncrease []string
	}{
		{"legacy entry, sync", true, 0, "/v1/process", pdfBuf.Bytes(), http.StatusOK, "sync", []string{syncOK, syncJobCreated}},
		{"legacy entry, not a PDF", true, 0, "/v1/process", []byte("hello"), http.StatusUnprocessableEntity, "sync", []string{syncClientErr}},
		{"legacy entry, async", true, 100, "/v1/process", pdfBuf.Bytes(), http.StatusAccepted, "async", []string{asyncOK, asyncJobCreated}},
		{"POST /v1/jobs", true, 0, "/v1/jobs", pdfBuf.Bytes(), http.StatusAccepted, "async", []string{asyncOK, asyncJobCreated}},
		{"POST /v1/jobs switched off", false, 100, "/v1/jobs", pdfBuf.Bytes(), http.StatusServiceUnavailable, "async", []string{asyncServerErr}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			setPolicy(s.async, s.pct)
			body, ct := form(t, s.file)
			res := call(t, srv, key, http.MethodPost, s.path, body, ct)
			if res.StatusCode != s.status || res.Header.Get(httpapi.RouteHeader) != s.route {
				t.Fatalf("%s: %s with route %q; want %d, %q", s.path, res.Status, res.Header.Get(httpapi.RouteHeader), s.status, s.route)
			}
			after := counters(t)
			want := map[string]float64{}
			for _, name := range []string{syncOK, syncClientErr, asyncOK, asyncServerErr, syncJobCreated, asyncJobCreated} {
				want[name] = before[name]
			}
			for _, name := range s.wantIncrease {
				want[name]++
			}
			got := map[string]float64{}
			for name := range want {
				got[name] = after[name]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
			before = after
		})
	}
}

// TestProcessOpenAPI: the legacy entry is documented as deprecated, with its
// form and both of its answers.
func TestProcessOpenAPI(t *testing.T) {
	srv, _ := rolloutServer(t)
	res, err := srv.Client().Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			Deprecated  bool `json:"deprecated"`
			RequestBody struct {
				Content map[string]any `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
				Headers map[string]any `json:"headers"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths["/v1/process"]["post"]
	if !op.Deprecated || op.RequestBody.Content["multipart/form-data"] == nil {
		t.Errorf("POST /v1/process: deprecated %t, request body %v", op.Deprecated, op.RequestBody.Content)
	}
	for code, ref := range map[string]string{"200": "#/components/schemas/JobResult", "202": "#/components/schemas/Job"} {
		r := op.Responses[code]
		if got := r.Content["application/json"].Schema.Ref; got != ref || r.Headers["Deprecation"] == nil || r.Headers["Sunset"] == nil {
			t.Errorf("POST /v1/process %s: schema %q, headers %v; want %s with Deprecation and Sunset", code, got, r.Headers, ref)
		}
	}
	for _, m := range []string{"get", "put"} {
		if _, ok := doc.Paths["/v1/admin/rollout"][m]; !ok {
			t.Errorf("%s /v1/admin/rollout is not documented", m)
		}
	}
}
