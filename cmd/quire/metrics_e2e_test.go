package main

// End-to-end tests of what a node tells its operators and its clients about
// itself: GET /metrics after a known sequence of jobs (parsed with the
// Prometheus text parser, every expected count exact), the metrics token,
// /healthz and /readyz with their reasons, and a job's events stream resumed
// with Last-Event-ID. The harness is e2e_helpers_test.go.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quirehq/quire/bench/fakegemini"
)

// ---- the exposition

// exposition is one scrape of GET /metrics, parsed.
type exposition map[string]*dto.MetricFamily

// scrapeMetrics reads GET /metrics with token ("" for none) and parses it
// with the Prometheus text parser: anything it rejects fails the test.
func (n *testNode) scrapeMetrics(tb testing.TB, token string) exposition {
	tb.Helper()
	r := n.client(token).get(tb, "/metrics")
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /metrics: %s", r)
	}
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/plain" || params["version"] != "0.0.4" {
		tb.Fatalf("GET /metrics: Content-Type %q, want text/plain; version=0.0.4", r.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(r.Body)))
	if err != nil {
		tb.Fatalf("parse /metrics: %v\n%s", err, r.Body)
	}
	return fams
}

// series returns the series of family name whose labels are exactly labels,
// or nil.
func (e exposition) series(name string, labels map[string]string) *dto.Metric {
	for _, m := range e[name].GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if maps.Equal(got, labels) {
			return m
		}
	}
	return nil
}

// value is the value of a counter or gauge series; the series must exist.
func (e exposition) value(tb testing.TB, name string, labels map[string]string) float64 {
	tb.Helper()
	m := e.series(name, labels)
	if m == nil {
		tb.Fatalf("/metrics has no series %s%v", name, labels)
	}
	return sampleValue(m)
}

// valueOr0 is the value of a series made on first use (HTTP routes and
// codes), 0 when it does not exist yet.
func (e exposition) valueOr0(name string, labels map[string]string) float64 {
	if m := e.series(name, labels); m != nil {
		return sampleValue(m)
	}
	return 0
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// sum adds the values of every series of family name whose labels include
// match.
func (e exposition) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, m := range e[name].GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && got[k] == v
		}
		if ok {
			total += sampleValue(m)
		}
	}
	return total
}

// histogram is the histogram series of family name with exactly labels.
func (e exposition) histogram(tb testing.TB, name string, labels map[string]string) *dto.Histogram {
	tb.Helper()
	m := e.series(name, labels)
	if m == nil || m.Histogram == nil {
		tb.Fatalf("/metrics has no histogram %s%v", name, labels)
	}
	return m.GetHistogram()
}

// cohortOf is the rollout cohort label of an account number: the decade of
// number % 100 (DESIGN.md, "the metrics count outcomes per cohort").
func cohortOf(number int64) string {
	d := number % 100 / 10 * 10
	return fmt.Sprintf("%d-%d", d, d+9)
}

// want compares one figure of the exposition with what the test knows.
type want struct {
	what      string
	got, want float64
}

func checkFigures(tb testing.TB, figures []want) {
	tb.Helper()
	for _, f := range figures {
		if f.got != f.want {
			tb.Errorf("%s = %v, want %v", f.what, f.got, f.want)
		}
	}
}

// ---- /metrics after a known sequence of jobs

// TestE2EMetrics runs a known sequence on one node, with the gemini
// extractor against the fake: two text jobs that complete (3 and 85 pages),
// one that is cancelled (1158 pages), one gemini job (311 pages) in which
// some chunks are stopped for SAFETY and some calls answered 429, one job
// processed synchronously by the legacy entry, and requests that are
// refused (401, 422, 404). GET /metrics then says exactly that: jobs by route,
// cohort and status, durations by size, chunk outcomes, credits equal to what
// the API reports, Gemini calls and tokens equal to what the fake saw, HTTP
// requests by route pattern and code, the slots, the ledger check, and the
// process.
func TestE2EMetrics(t *testing.T) {
	t.Parallel()
	small := corpusFile(t, smallPDF)           // 3 pages: lt30
	medium := corpusFile(t, "r-admin-85p.pdf") // 30to100
	geminiPDF := corpusFile(t, mediumPDF)      // 311 pages: 300plus
	large := corpusFile(t, largePDF)           // 1158 pages, cancelled
	notPDF := filepath.Join(t.TempDir(), "notes.pdf")
	if err := os.WriteFile(notPDF, []byte("these are notes, not a PDF\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	fake := startFakeGemini(t, fastFake("--seed", "3", "--faults", "safety=0.2,rate_limited_429=0.15", "--retry-delay", "1s")...)
	const concurrency = 4
	n := startNodeEnv(t, fake.env(), "--concurrency", strconv.Itoa(concurrency), "--gemini-rpm", "1200")
	c, number := n.numberedAccount(t, "metrics", 10_000)
	cohort := cohortOf(number)

	// Requests whose answers the test counts: route pattern, method, code.
	type call struct {
		route, method string
		status        int
	}
	calls := map[call]int{{"/v1/admin/accounts", "POST", http.StatusCreated}: 1}
	var ids []string // every job, to add up their credits and chunks

	// The cancelled job: 232 chunks on 4 slots, cancelled at once.
	big := c.submit(t, large, map[string]string{"chunk_pages": "5"})
	calls[call{"/v1/jobs", "POST", http.StatusAccepted}]++
	ids = append(ids, big.ID)
	r := c.do(t, http.MethodPost, "/v1/jobs/"+big.ID+"/cancel", nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("cancel: %s", r)
	}
	calls[call{"/v1/jobs/{id}/cancel", "POST", http.StatusOK}]++

	for _, sub := range []struct {
		file   string
		fields map[string]string
	}{
		{small, nil},
		{medium, map[string]string{"chunk_pages": "10"}},
		{geminiPDF, geminiFields(10)},
	} {
		j := c.submit(t, sub.file, sub.fields)
		calls[call{"/v1/jobs", "POST", http.StatusAccepted}]++
		ids = append(ids, j.ID)
	}

	// Refused requests: no key, a wrong key, not a PDF, a gemini job
	// without a prompt, a path that is no route.
	n.client("").upload(t, small, nil).wantProblem(t, http.StatusUnauthorized)
	n.client("qk_not_a_key").upload(t, small, nil).wantProblem(t, http.StatusUnauthorized)
	calls[call{"/v1/jobs", "POST", http.StatusUnauthorized}] += 2
	c.upload(t, notPDF, nil).wantProblem(t, http.StatusUnprocessableEntity)
	c.upload(t, small, map[string]string{"extractor": "gemini"}).wantProblem(t, http.StatusUnprocessableEntity)
	calls[call{"/v1/jobs", "POST", http.StatusUnprocessableEntity}] += 2
	if r := n.client("").get(t, "/no/such/route"); r.Status != http.StatusNotFound {
		t.Fatalf("GET /no/such/route: %s", r)
	}
	calls[call{"unmatched", "GET", http.StatusNotFound}]++

	// The legacy entry, routed sync for every cohort (percentage 0).
	n.setRollout(t, true, 0, 10)
	calls[call{"/v1/admin/rollout", "PUT", http.StatusOK}]++
	res := wantSync(t, c.process(t, small, nil), 3)
	calls[call{"/v1/process", "POST", http.StatusOK}]++
	ids = append(ids, res.JobID)

	// Every job ends; read each one and its result.
	jobs := map[string]jobView{}
	results := map[string]resultView{}
	for _, id := range ids {
		final, _ := c.waitTerminal(t, jobView{ID: id}, jobTimeout)
		jobs[id] = final
		results[id] = c.result(t, id)
		calls[call{"/v1/jobs/{id}/result", "GET", http.StatusOK}]++
	}
	statuses := map[string]string{}
	for _, id := range ids {
		statuses[id] = jobs[id].Status
	}
	wantStatuses := map[string]string{ids[0]: "cancelled", ids[1]: "completed", ids[2]: "completed", ids[3]: "partially_completed", ids[4]: "completed"}
	if !maps.Equal(statuses, wantStatuses) {
		t.Fatalf("jobs ended %v, want %v", statuses, wantStatuses)
	}

	// A job counts in quire_jobs_finished_total just after its end is
	// durable, which the API may show first: wait for all five, and for
	// the slots of the cancelled job's chunks to be freed.
	var e exposition
	pollUntil(t, 30*time.Second, "five finished jobs and no busy slot in /metrics", func() bool {
		e = n.scrapeMetrics(t, "")
		return e.sum("quire_jobs_finished_total", nil) == 5 && e.value(t, "quire_slots_busy", nil) == 0
	})
	st := fake.stats(t)

	// Jobs.
	async := map[string]string{"route": "async", "cohort": cohort}
	sync := map[string]string{"route": "sync", "cohort": cohort}
	finished := func(status string, route map[string]string) float64 {
		return e.value(t, "quire_jobs_finished_total", map[string]string{"status": status, "route": route["route"], "cohort": cohort})
	}
	figures := []want{
		{"jobs created async", e.value(t, "quire_jobs_created_total", async), 4},
		{"jobs created sync", e.value(t, "quire_jobs_created_total", sync), 1},
		{"jobs created in all", e.sum("quire_jobs_created_total", nil), 5},
		{"completed async", finished("completed", async), 2},
		{"partially_completed async", finished("partially_completed", async), 1},
		{"cancelled async", finished("cancelled", async), 1},
		{"failed async", finished("failed", async), 0},
		{"completed sync", finished("completed", sync), 1},
		{"jobs finished in all", e.sum("quire_jobs_finished_total", nil), 5},
		// Routed requests of an account: the legacy entry's, and POST /v1/jobs (async).
		{"routed requests sync ok", e.value(t, "quire_rollout_requests_total",
			map[string]string{"route": "sync", "cohort": cohort, "outcome": "ok"}), 1},
		{"routed requests async ok", e.value(t, "quire_rollout_requests_total",
			map[string]string{"route": "async", "cohort": cohort, "outcome": "ok"}), 4},
		{"routed requests async client_error", e.value(t, "quire_rollout_requests_total",
			map[string]string{"route": "async", "cohort": cohort, "outcome": "client_error"}), 2},
		{"routed requests in all", e.sum("quire_rollout_requests_total", nil), 1 + 4 + 2},
	}
	// Durations of the jobs that completed, even partially, by size.
	for size, count := range map[string]uint64{"lt30": 2, "30to100": 1, "100to300": 0, "300plus": 1} {
		h := e.histogram(t, "quire_job_duration_seconds", map[string]string{"size": size})
		figures = append(figures, want{"job durations " + size, float64(h.GetSampleCount()), float64(count)})
		if count > 0 && h.GetSampleSum() <= 0 {
			t.Errorf("job durations %s: %d with a sum of %v s", size, count, h.GetSampleSum())
		}
		figures = append(figures, want{"oldest running job " + size,
			e.value(t, "quire_job_running_oldest_seconds", map[string]string{"size": size}), 0})
	}

	// Credits: what the API says of each job, added up.
	var reserved, charged, refunded int64
	for _, j := range jobs {
		reserved += j.Credits.Reserved
		charged += j.Credits.Charged
		refunded += j.Credits.Refunded
	}
	if reserved != 3+85+311+1158+3 || reserved != charged+refunded {
		t.Errorf("the jobs reserved %d credits, charged %d, refunded %d; want %d = charged + refunded", reserved, charged, refunded, 3+85+311+1158+3)
	}
	cr := c.credits(t)
	figures = append(figures,
		want{"credits reserved", e.value(t, "quire_credits_reserved_total", nil), float64(reserved)},
		want{"credits charged", e.value(t, "quire_credits_charged_total", nil), float64(charged)},
		want{"credits charged (the account's)", e.value(t, "quire_credits_charged_total", nil), float64(cr.Charged)},
		want{"credits refunded", e.value(t, "quire_credits_refunded_total", nil), float64(refunded)},
		want{"ledger discrepancy", e.value(t, "quire_ledger_discrepancy", nil), 0},
	)

	// Chunks: every attempt's outcome. Text chunks never fail here; every
	// chunk of the cancelled job not done had an attempt queued or running;
	// a gemini attempt answered 429 waits and goes again.
	byStatus := map[string]int{}
	for _, r := range results {
		for _, ch := range r.Chunks {
			byStatus[ch.Status]++
		}
	}
	rateLimited := st.Outcomes[fakegemini.OutcomeRateLimited]
	if byStatus["failed"] == 0 || rateLimited == 0 || byStatus["cancelled"] == 0 {
		t.Errorf("chunks by status %v, %d answers 429: want some failed, some cancelled, some 429s", byStatus, rateLimited)
	}
	chunks := func(outcome string) float64 {
		return e.value(t, "quire_chunks_finished_total", map[string]string{"outcome": outcome})
	}
	figures = append(figures,
		want{"chunks done", chunks("done"), float64(byStatus["done"])},
		want{"chunks failed", chunks("failed"), float64(byStatus["failed"])},
		want{"chunks cancelled", chunks("cancelled"), float64(byStatus["cancelled"])},
		want{"chunk attempts rate limited", chunks("rate_limited"), float64(rateLimited)},
		want{"chunk attempts retried", chunks("retried"), 0},
		want{"chunk attempts lost", chunks("lost"), 0},
		want{"chunk retries", e.value(t, "quire_chunk_retries_total", nil), float64(rateLimited)},
	)
	attempts := e.sum("quire_chunks_finished_total", nil)
	if h := e.histogram(t, "quire_chunk_duration_seconds", nil); h.GetSampleCount() == 0 || float64(h.GetSampleCount()) > attempts {
		t.Errorf("chunk durations: %d, want some and at most one per attempt that ended (%v)", h.GetSampleCount(), attempts)
	}

	// Gemini: what the fake saw, by outcome, and the tokens it billed.
	o := st.Outcomes
	gemini := func(outcome string) float64 {
		return e.value(t, "quire_gemini_requests_total", map[string]string{"outcome": outcome})
	}
	figures = append(figures,
		want{"gemini ok", gemini("ok"), float64(o[fakegemini.OutcomeOK] + o[fakegemini.OutcomeMalformed] + o[fakegemini.OutcomeSchemaMismatch])},
		want{"gemini 429", gemini("429"), float64(o[fakegemini.OutcomeRateLimited] + o[fakegemini.OutcomeDailyQuota])},
		want{"gemini 5xx", gemini("5xx"), float64(o[fakegemini.OutcomeUnavailable] + o[fakegemini.OutcomeInternal])},
		want{"gemini timeout", gemini("timeout"), 0},
		want{"gemini error", gemini("error"), float64(o[fakegemini.OutcomeSafety] + o[fakegemini.OutcomeRecitation] +
			o[fakegemini.OutcomeInvalidArgument] + o[fakegemini.OutcomePermissionDenied])},
		want{"gemini requests in all", e.sum("quire_gemini_requests_total", nil), float64(st.RequestsTotal)},
		want{"gemini input tokens", e.value(t, "quire_gemini_tokens_total", map[string]string{"kind": "input"}), float64(st.PromptTokens)},
		want{"gemini output tokens", e.value(t, "quire_gemini_tokens_total", map[string]string{"kind": "output"}), float64(st.CandidatesTokens)},
	)
	if o[fakegemini.OutcomeSafety] == 0 || st.PromptTokens == 0 {
		t.Errorf("the fake answered %d SAFETY and billed %d prompt tokens: want some of each", o[fakegemini.OutcomeSafety], st.PromptTokens)
	}

	// HTTP: the requests the test counted, by route pattern (never a path
	// with a job id in it), method and code.
	for k, count := range calls {
		figures = append(figures, want{fmt.Sprintf("%s %s -> %d", k.method, k.route, k.status),
			e.valueOr0("quire_http_requests_total", map[string]string{"route": k.route, "method": k.method, "status": strconv.Itoa(k.status)}),
			float64(count)})
	}
	posts := e.histogram(t, "quire_http_request_duration_seconds", map[string]string{"route": "/v1/jobs"})
	figures = append(figures, want{"durations of /v1/jobs requests", float64(posts.GetSampleCount()), 4 + 2 + 2})
	if e.valueOr0("quire_http_requests_total", map[string]string{"route": "/readyz", "method": "GET", "status": "200"}) < 1 {
		t.Errorf("no GET /readyz counted, though the harness waited on it")
	}
	for _, m := range e["quire_http_requests_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "route" && strings.Contains(lp.GetValue(), ids[0]) {
				t.Errorf("a series has a job id in its route: %v", m.GetLabel())
			}
		}
	}

	// The node: its slots, the cluster (itself alone), the store, the process.
	figures = append(figures,
		want{"slots capacity", e.value(t, "quire_slots_capacity", nil), concurrency},
		want{"slots busy", e.value(t, "quire_slots_busy", nil), 0},
		want{"queue depth", e.value(t, "quire_queue_depth", nil), 0},
		want{"members alive", e.value(t, "quire_cluster_members_alive", nil), 1},
	)
	checkFigures(t, figures)
	for _, name := range []string{"quire_pebble_disk_usage_bytes", "process_resident_memory_bytes", "go_goroutines", "quire_memory_limit_bytes"} {
		if v := e.value(t, name, nil); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}

	// Every Quire family says what it is, in the Prometheus conventions.
	for name, fam := range e {
		if !strings.HasPrefix(name, "quire_") {
			continue
		}
		if strings.TrimSpace(fam.GetHelp()) == "" {
			t.Errorf("%s has no HELP", name)
		}
		switch {
		case strings.HasSuffix(name, "_total") && fam.GetType() != dto.MetricType_COUNTER:
			t.Errorf("%s is a %s, want a counter", name, fam.GetType())
		case strings.HasSuffix(name, "_seconds") && fam.GetType() != dto.MetricType_HISTOGRAM && fam.GetType() != dto.MetricType_GAUGE:
			t.Errorf("%s is a %s, want a histogram or a gauge", name, fam.GetType())
		}
	}
	t.Logf("chunks %v; fake: %d requests, %d ok, %d 429, %d safety", byStatus, st.RequestsTotal,
		o[fakegemini.OutcomeOK], o[fakegemini.OutcomeRateLimited], o[fakegemini.OutcomeSafety])
}

// TestE2EMetricsToken: with --metrics-token (here its environment twin),
// GET /metrics answers 401 problem+json to a request without the token or
// with another one (the admin token too), and the metrics to the token; the
// health endpoints stay open.
func TestE2EMetricsToken(t *testing.T) {
	t.Parallel()
	const token = "qm_metrics_token_for_the_test"
	n := startNodeEnv(t, []string{"QUIRE_METRICS_TOKEN=" + token})
	for _, bad := range []string{"", "qm_another_token", n.adminToken, n.demoKey} {
		r := n.client(bad).get(t, "/metrics")
		r.wantProblem(t, http.StatusUnauthorized)
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without a Bearer challenge: %s", r)
		}
	}
	e := n.scrapeMetrics(t, token)
	if v := e.value(t, "quire_slots_capacity", nil); v != 8 {
		t.Errorf("quire_slots_capacity = %v, want the default concurrency 8", v)
	}
	if v := e.valueOr0("quire_http_requests_total", map[string]string{"route": "/metrics", "method": "GET", "status": "401"}); v != 4 {
		t.Errorf("refused scrapes counted %v, want 4", v)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := n.client("").get(t, path); r.Status != http.StatusOK {
			t.Errorf("GET %s without a token: %s", path, r)
		}
	}
	// The metrics are not an API operation.
	if r := n.client("").get(t, "/openapi.json"); r.Status != http.StatusOK || strings.Contains(string(r.Body), `"/metrics"`) {
		t.Errorf("/openapi.json lists /metrics, or failed: %d", r.Status)
	}
}

// ---- /healthz and /readyz

// TestE2EReadyzLedgerDown: in a cluster of two, the node without the
// ledger is ready while the ledger's node is up, answers 503 with a
// problem+json that says the ledger does not answer while it is down (and
// its metrics see the member fail), and is ready again once it is back.
// /healthz answers 200 throughout.
func TestE2EReadyzLedgerDown(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, 2)
	n1, n2 := cl.nodes[0], cl.nodes[1]
	readyz := func() *response { return n2.client("").get(t, "/readyz") }
	if r := readyz(); r.Status != http.StatusOK {
		t.Fatalf("n2 not ready with n1 up: %s", r)
	}
	e := n2.scrapeMetrics(t, "")
	checkFigures(t, []want{
		{"n2: members alive", e.value(t, "quire_cluster_members_alive", nil), 2},
		{"n2: n1 up", e.value(t, "quire_cluster_member_up", map[string]string{"member": "n1"}), 1},
	})

	n1.kill()
	var last *response
	pollEvery(t, gossipTimeout, 50*time.Millisecond, func() string { return "n2 /readyz answers 503; last: " + last.String() }, func() bool {
		last = readyz()
		return last.Status == http.StatusServiceUnavailable
	})
	p := last.wantProblemStatus(t, http.StatusServiceUnavailable)
	// Until Raft notices, n1 is still taken for the leader and the
	// connection to it is lost; then there is no leader (no quorum).
	if !strings.Contains(p.Detail, "ledger not answering") || !strings.Contains(p.Detail, "no leader") && !strings.Contains(p.Detail, "leader n1") {
		t.Errorf("n2 /readyz detail %q, want it to say the ledger does not answer: no Raft leader, or the leader n1 lost", p.Detail)
	}
	if r := n2.client("").get(t, "/healthz"); r.Status != http.StatusOK {
		t.Errorf("n2 /healthz while n1 is down: %s", r)
	}
	pollEvery(t, gossipTimeout, 100*time.Millisecond, func() string { return "n2's metrics see n1 fail" }, func() bool {
		e := n2.scrapeMetrics(t, "")
		return e.value(t, "quire_cluster_member_up", map[string]string{"member": "n1"}) == 0 &&
			e.value(t, "quire_cluster_members_alive", nil) == 1
	})

	n1.start()
	pollEvery(t, gossipTimeout, 50*time.Millisecond, func() string { return "n2 /readyz answers 200 again; last: " + last.String() }, func() bool {
		last = readyz()
		return last.Status == http.StatusOK
	})
	pollEvery(t, gossipTimeout, 100*time.Millisecond, func() string { return "n2's metrics see n1 back" }, func() bool {
		e := n2.scrapeMetrics(t, "")
		return e.value(t, "quire_cluster_member_up", map[string]string{"member": "n1"}) == 1 &&
			e.value(t, "quire_cluster_members_alive", nil) == 2
	})
}

// wantProblemStatus is wantProblem for a 5xx status.
func (r *response) wantProblemStatus(tb testing.TB, status int) *problem {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("want %d: %s", status, r)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/problem+json" {
		tb.Fatalf("Content-Type %q, want application/problem+json: %s", r.Header.Get("Content-Type"), r)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != status || p.Detail == "" {
		tb.Fatalf("problem %+v (%v): %s", p, err, r)
	}
	return &p
}

// TestE2EReadyzNotJoined: a node told to join a cluster whose seeds do not
// answer, and whose ledger is on another node, runs (/healthz 200) but is
// not ready, and says both why: it has not joined, and the ledger does not
// answer.
func TestE2EReadyzNotJoined(t *testing.T) {
	t.Parallel()
	nobody := freeGossipAddr(t) // no one listens there
	n := startAlive(t, nodeOptions{
		name: "lonely",
		env:  []string{"QUIRE_ADMIN_TOKEN=" + clusterAdminToken},
		args: []string{
			"--gossip-addr", freeGossipAddr(t), "--remote-addr", freeAddr(t), "--join", nobody,
		},
	})
	r := n.client("").get(t, "/readyz")
	p := r.wantProblemStatus(t, http.StatusServiceUnavailable)
	for _, want := range []string{"not joined to the cluster", nobody, "not answering"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("/readyz detail %q lacks %q", p.Detail, want)
		}
	}
	if r := n.client("").get(t, "/healthz"); r.Status != http.StatusOK {
		t.Errorf("/healthz: %s", r)
	}
}

// startAlive starts a node like startNodeWith but waits only for /healthz:
// for nodes that are not meant to become ready.
func startAlive(tb testing.TB, o nodeOptions) *testNode {
	tb.Helper()
	o.args = secureClusterArgs(tb, o.name, o.args)
	if o.addr == "" {
		o.addr = freeAddr(tb)
	}
	o = o.withGossipKey(tb)
	n := &testNode{
		tb: tb, bin: quireBinary(tb), name: o.name, addr: o.addr, url: "http://" + o.addr,
		dataDir: tb.TempDir(), logDir: tb.TempDir(), extraArgs: o.args, env: o.env,
		http: &http.Client{Timeout: 2 * time.Minute},
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			n.dumpLogs()
		}
	})
	tb.Cleanup(n.stop)
	n.starts++
	args := append([]string{"serve", "--http-addr", n.addr, "--data-dir", n.dataDir, "--node-name", n.name, "--log-level", "debug"}, o.args...)
	stdout, stderr := n.openLog("stdout"), n.openLog("stderr")
	cmd := exec.Command(n.bin, args...)
	cmd.Env = childEnv(n.env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start quire: %v", err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	exited := n.exited
	go func() {
		n.err = cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := n.http.Get(n.url + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return n
			}
		}
		select {
		case <-exited:
			tb.Fatalf("quire exited before it answered /healthz: %v", n.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatal("quire did not answer /healthz within 60s")
		}
	}
}

// ---- the events stream

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	Name string
	ID   int64
	Data jobView
}

// readEvents reads GET /v1/jobs/{id}/events (resuming after lastID when it is
// above 0) and hands each event to each until it returns false or the
// stream ends. It returns the events read.
func (c *apiClient) readEvents(tb testing.TB, id string, lastID int64, each func(sseEvent) bool) []sseEvent {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.n.url+"/v1/jobs/"+id+"/events", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET events: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(res.Body)
		tb.Fatalf("GET events: %s %q: %s", res.Status, res.Header.Get("Content-Type"), b)
	}
	var out []sseEvent
	var ev sseEvent
	var data strings.Builder
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.Name = value
			case "id":
				if ev.ID, err = strconv.ParseInt(value, 10, 64); err != nil {
					tb.Fatalf("event id %q: %v", value, err)
				}
			case "data":
				data.WriteString(value)
			}
			continue
		}
		if data.Len() == 0 {
			continue
		}
		if err := json.Unmarshal([]byte(data.String()), &ev.Data); err != nil {
			tb.Fatalf("event %s data %q: %v", ev.Name, data.String(), err)
		}
		out = append(out, ev)
		if !each(ev) {
			return out
		}
		ev, data = sseEvent{}, strings.Builder{}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		tb.Fatalf("read events: %v", err)
	}
	return out
}

// TestE2EJobEventsResume follows a job's events, hangs up after the first,
// and reconnects with Last-Event-ID while the job runs: the second stream
// has only events after that id, in increasing order, each a progress of
// the job, then `end` with the job as GET /v1/jobs/{id} shows it at the end.
// A client that reconnects after the end gets `end` alone.
func TestE2EJobEventsResume(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, "r-admin-85p.pdf")
	// One slot and 300 ms a chunk: 9 chunks take about 3 s.
	fake := startFakeGemini(t, "--latency-base", "300ms", "--latency-per-page", "0s", "--latency-jitter", "0s")
	n := startNodeEnv(t, fake.env(), "--concurrency", "1")
	c, _ := n.newAccount(t, "events", 1000)
	j := submitGemini(t, c, pdf, 85, 10)

	first := c.readEvents(t, j.ID, 0, func(sseEvent) bool { return false })
	if len(first) != 1 || first[0].Name != "progress" || first[0].ID < 1 || first[0].Data.ID != j.ID {
		t.Fatalf("first event %+v, want a progress event of job %s with an id", first, j.ID)
	}
	seen := first[0].ID
	// Let the job move on while no one listens.
	c.watch(t, j, jobTimeout, func(v jobView) bool { return v.Chunks.Done >= 2 || terminalStatus[v.Status] })

	rest := c.readEvents(t, j.ID, seen, func(sseEvent) bool { return true })
	if len(rest) == 0 {
		t.Fatal("no event after reconnecting")
	}
	prev := seen
	for i, ev := range rest {
		if ev.ID <= prev {
			t.Errorf("event %d has id %d after id %d: ids must grow past Last-Event-ID %d", i, ev.ID, prev, seen)
		}
		prev = ev.ID
		last := i == len(rest)-1
		switch {
		case last && ev.Name != "end":
			t.Errorf("the stream ended with %q, want end", ev.Name)
		case !last && ev.Name != "progress":
			t.Errorf("event %d is %q before the end, want progress", i, ev.Name)
		}
	}
	end := rest[len(rest)-1]
	final := c.job(t, j.ID)
	if end.Data.Status != "completed" || end.Data.Status != final.Status || end.Data.Chunks != final.Chunks ||
		end.Data.Credits != final.Credits || end.Data.Progress != 1 {
		t.Errorf("end event %+v; the job is %+v", end.Data, final)
	}
	t.Logf("resumed after id %d: %d events, ids %d..%d", seen, len(rest), rest[0].ID, end.ID)

	// After the end: the end again, alone.
	again := c.readEvents(t, j.ID, end.ID, func(sseEvent) bool { return true })
	if len(again) != 1 || again[0].Name != "end" || again[0].ID != end.ID || again[0].Data.Status != "completed" {
		t.Errorf("reconnecting after the end: %+v, want the end event (id %d) alone", again, end.ID)
	}
}
