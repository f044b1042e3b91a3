package main

// End-to-end tests of the rollout of the async path: the policy that routes
// the legacy entry POST /v1/process (by account number and upload size), its
// change at run time on one node obeyed by the whole cluster and kept across
// a restart, the emergency switch (async_enabled=false) while jobs run, and
// the bounds of the legacy entry's sync path (page limit: 413; deadline: 504
// with a refund). The harness is e2e_helpers_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/bench/pdfgen"
	"github.com/quirehq/quire/httpapi"
)

// routeHeader says which path a request took.
const routeHeader = "X-Quire-Route"

// policyTimeout bounds how long a policy set on one node takes to be obeyed
// by the others (about a second), generously.
const policyTimeout = 20 * time.Second

// rolloutView is GET and PUT /v1/admin/rollout.
type rolloutView struct {
	AsyncEnabled    bool   `json:"async_enabled"`
	Percentage      int    `json:"percentage"`
	SizeThresholdMB int    `json:"size_threshold_mb"`
	Version         int64  `json:"version"`
	UpdatedAt       string `json:"updated_at"`
}

func (n *testNode) rollout(tb testing.TB) rolloutView {
	tb.Helper()
	var v rolloutView
	n.admin().get(tb, "/v1/admin/rollout").decode(tb, http.StatusOK, &v)
	return v
}

// setRollout replaces the policy through n and checks its answer.
func (n *testNode) setRollout(tb testing.TB, async bool, percentage, sizeMB int) rolloutView {
	tb.Helper()
	body := map[string]any{"async_enabled": async, "percentage": percentage, "size_threshold_mb": sizeMB}
	r := n.admin().do(tb, http.MethodPut, "/v1/admin/rollout", jsonBody(tb, body), "application/json")
	var v rolloutView
	r.decode(tb, http.StatusOK, &v)
	if v.AsyncEnabled != async || v.Percentage != percentage || v.SizeThresholdMB != sizeMB || v.Version < 1 || v.UpdatedAt == "" {
		tb.Fatalf("PUT /v1/admin/rollout %v through %s answered %+v", body, n.name, v)
	}
	return v
}

// waitPolicy polls GET /v1/admin/rollout on n until it shows version want.
func (n *testNode) waitPolicy(tb testing.TB, want rolloutView) {
	tb.Helper()
	start := time.Now()
	var last rolloutView
	pollEvery(tb, policyTimeout, 50*time.Millisecond, func() string {
		return fmt.Sprintf("%s shows the policy %+v; last: %+v", n.name, want, last)
	}, func() bool {
		last = n.rollout(tb)
		return last == want
	})
	tb.Logf("%s obeys policy version %d after %s", n.name, want.Version, time.Since(start).Round(time.Millisecond))
}

func jsonBody(tb testing.TB, v any) *bytes.Reader {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.NewReader(b)
}

// numberedAccount creates an account and returns a client with its key and
// its number, the one the policy's percentage is compared with.
func (n *testNode) numberedAccount(tb testing.TB, name string, credits int64) (*apiClient, int64) {
	tb.Helper()
	var acct struct {
		ID     string `json:"id"`
		Number int64  `json:"number"`
		APIKey string `json:"api_key"`
	}
	n.admin().postJSON(tb, "/v1/admin/accounts", map[string]any{"name": name, "credits": credits}).decode(tb, http.StatusCreated, &acct)
	if acct.APIKey == "" || acct.Number < 1 {
		tb.Fatalf("create account: got %+v", acct)
	}
	return n.client(acct.APIKey), acct.Number
}

// process posts file (and fields) to the legacy entry, POST /v1/process,
// and checks the headers every answer of it carries.
func (c *apiClient) process(tb testing.TB, file string, fields map[string]string) *response {
	tb.Helper()
	body, ct := multipartBody(tb, file, fields)
	r := c.do(tb, http.MethodPost, "/v1/process", body, ct)
	checkDeprecated(tb, r)
	return r
}

var deprecationDate = regexp.MustCompile(`^@(\d+)$`)

// checkDeprecated checks the legacy entry's deprecation headers: Deprecation
// (RFC 9745, an @-date), Sunset (RFC 8594, an HTTP-date after it) and Links
// to the deprecation notice and the successor.
func checkDeprecated(tb testing.TB, r *response) {
	tb.Helper()
	m := deprecationDate.FindStringSubmatch(r.Header.Get("Deprecation"))
	if m == nil {
		tb.Fatalf("Deprecation %q is not an RFC 9745 date (@unix-seconds): %s", r.Header.Get("Deprecation"), r)
	}
	deprecated, _ := strconv.ParseInt(m[1], 10, 64)
	sunset, err := http.ParseTime(r.Header.Get("Sunset"))
	if err != nil {
		tb.Fatalf("Sunset %q is not an HTTP-date: %v: %s", r.Header.Get("Sunset"), err, r)
	}
	if !sunset.After(time.Unix(deprecated, 0)) {
		tb.Errorf("Sunset %s is not after Deprecation %s", sunset, time.Unix(deprecated, 0).UTC())
	}
	links := strings.Join(r.Header.Values("Link"), ", ")
	for _, want := range []string{`rel="deprecation"`, `rel="successor-version"`, "</v1/jobs>"} {
		if !strings.Contains(links, want) {
			tb.Errorf("Link headers %q lack %s: %s", links, want, r)
		}
	}
}

// wantRoute checks the X-Quire-Route header.
func wantRoute(tb testing.TB, r *response, route string) {
	tb.Helper()
	if got := r.Header.Get(routeHeader); got != route {
		tb.Fatalf("%s: %s, want %q: %s", routeHeader, got, route, r)
	}
}

// wantAsync checks a 202 answer of the legacy entry routed async: the job,
// its Location, and the route; it returns the job.
func wantAsync(tb testing.TB, r *response) jobView {
	tb.Helper()
	var j jobView
	r.decode(tb, http.StatusAccepted, &j)
	wantRoute(tb, r, "async")
	if j.ID == "" || r.Header.Get("Location") != "/v1/jobs/"+j.ID {
		tb.Fatalf("202 with job %q and Location %q: %s", j.ID, r.Header.Get("Location"), r)
	}
	return j
}

// wantSync checks a 200 answer of the legacy entry processed in the
// request: the result of a completed job with every one of its pages.
func wantSync(tb testing.TB, r *response, pages int) resultView {
	tb.Helper()
	var res resultView
	r.decode(tb, http.StatusOK, &res)
	wantRoute(tb, r, "sync")
	if res.JobID == "" || res.Status != "completed" {
		tb.Fatalf("sync answer of job %q in status %q, want completed: %s", res.JobID, res.Status, r)
	}
	if got := len(pageTexts(tb, res, pages)); got != pages {
		tb.Fatalf("sync result has the text of %d pages, want %d", got, pages)
	}
	return res
}

// jobRoute reads a job and checks that it carries the route it came in by.
func (c *apiClient) jobRoute(tb testing.TB, id, route string) jobView {
	tb.Helper()
	r := c.get(tb, "/v1/jobs/"+id)
	var j jobView
	r.decode(tb, http.StatusOK, &j)
	wantRoute(tb, r, route)
	return j
}

// TestRolloutPercentage: with percentage 30, exactly the accounts whose
// number % 100 is below 30 are sent async by the legacy entry; the others
// are processed in the request and get their result at once. POST /v1/jobs
// is async for everyone.
func TestRolloutPercentage(t *testing.T) {
	t.Parallel()
	small := corpusFile(t, smallPDF)
	n := startNode(t)
	if p := n.rollout(t); p != (rolloutView{AsyncEnabled: true, Percentage: 100, SizeThresholdMB: 10}) {
		t.Fatalf("policy of a new cluster: %+v, want async_enabled, 100 %%, 10 MB, version 0", p)
	}
	n.setRollout(t, true, 30, 10)

	clients := map[int64]*apiClient{1: n.client(n.demoKey)} // the demo account is number 1
	for len(clients) < 35 {
		c, num := n.numberedAccount(t, fmt.Sprintf("cohort-%d", len(clients)), 100)
		clients[num] = c
	}
	var async, sync []int64
	for num := int64(1); num <= 35; num++ {
		c, ok := clients[num]
		if !ok {
			t.Fatalf("no account numbered %d among %d sequential accounts", num, len(clients))
		}
		before := c.credits(t).standing()
		r := c.process(t, small, nil)
		if num%100 < 30 {
			j := wantAsync(t, r)
			async = append(async, num)
			c.jobRoute(t, j.ID, "async")
			final, _ := c.waitTerminal(t, j, jobTimeout)
			if final.Status != "completed" || final.Credits != (jobCredits{Reserved: 3, Charged: 3}) {
				t.Errorf("account %d: async job ended %s with credits %+v", num, final.Status, final.Credits)
			}
		} else {
			res := wantSync(t, r, 3)
			sync = append(sync, num)
			j := c.jobRoute(t, res.JobID, "sync")
			if j.Status != "completed" || j.Credits != (jobCredits{Reserved: 3, Charged: 3}) {
				t.Errorf("account %d: sync job %s with credits %+v", num, j.Status, j.Credits)
			}
		}
		want := before
		want.Balance, want.Available, want.Charged = before.Balance-3, before.Available-3, before.Charged+3
		if diff := cmp.Diff(want, c.credits(t).standing()); diff != "" {
			t.Errorf("account %d: credits after one 3-page request (-want +got):\n%s", num, diff)
		}
	}
	t.Logf("async: accounts %v; sync: accounts %v", async, sync)
	if len(async) != 29 || len(sync) != 6 {
		t.Errorf("%d accounts went async and %d sync; want 29 (numbers 1-29) and 6 (30-35)", len(async), len(sync))
	}

	// POST /v1/jobs is the async path for every cohort.
	c := clients[33]
	r := c.upload(t, small, nil)
	var j jobView
	r.decode(t, http.StatusAccepted, &j)
	wantRoute(t, r, "async")
	c.jobRoute(t, j.ID, "async")
}

// TestRolloutLargeUpload: an upload above size_threshold_mb (an 11 MiB PDF)
// goes async whatever the percentage, while a small one from the same
// account is processed in the request. With the async path switched off, the
// large one is processed in the request too.
func TestRolloutLargeUpload(t *testing.T) {
	t.Parallel()
	small := corpusFile(t, smallPDF)
	large := filepath.Join(t.TempDir(), "padded-11mib.pdf")
	fh, err := os.Create(large)
	if err != nil {
		t.Fatal(err)
	}
	if err := pdfgen.Generate(fh, 4, 11<<20); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(large); err != nil || st.Size() <= 11<<20 {
		t.Fatalf("generated PDF: %v, %v; want more than 11 MiB", st, err)
	}

	n := startNode(t) // --max-upload-mb defaults to 512
	n.setRollout(t, true, 0, 10)
	c := n.client(n.demoKey)

	j := wantAsync(t, c.process(t, large, nil))
	final, _ := c.waitTerminal(t, j, jobTimeout)
	if final.Status != "completed" || final.Pages != 4 || final.Credits != (jobCredits{Reserved: 4, Charged: 4}) {
		t.Fatalf("the large upload's job: %+v", final)
	}
	pageTexts(t, c.result(t, j.ID), 4)
	wantSync(t, c.process(t, small, nil), 3)

	// A larger threshold takes it back to the percentage: sync.
	n.setRollout(t, true, 0, 12)
	wantSync(t, c.process(t, large, nil), 4)

	// The emergency switch overrides the size rule.
	n.setRollout(t, false, 100, 10)
	wantSync(t, c.process(t, large, nil), 4)
}

// TestClusterRolloutPolicy: the policy set through one node of a three-node
// cluster is obeyed by the others within seconds (each answers with it and
// routes by it), and is kept across a restart of the ledger's node.
func TestClusterRolloutPolicy(t *testing.T) {
	t.Parallel()
	small := corpusFile(t, smallPDF)
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	acct, num := n2.numberedAccount(t, "cluster-rollout", 1000)
	via := func(n *testNode) *apiClient { return n.client(acct.token) }
	t.Logf("account number %d", num)
	for _, n := range c.nodes {
		if p := n.rollout(t); p.Version != 0 || !p.AsyncEnabled || p.Percentage != 100 {
			t.Fatalf("%s: policy of a new cluster %+v", n.name, p)
		}
	}

	// Set on n2 (not the ledger's node): every node routes this account sync.
	p := n2.setRollout(t, true, 0, 10)
	n1.waitPolicy(t, p)
	n3.waitPolicy(t, p)
	res := wantSync(t, via(n3).process(t, small, nil), 3)
	via(n1).jobRoute(t, res.JobID, "sync") // passed to its owner, n3

	// Set on n3: n1 and n2 send it async.
	p = n3.setRollout(t, true, 100, 10)
	n1.waitPolicy(t, p)
	n2.waitPolicy(t, p)
	for _, n := range []*testNode{n1, n2} {
		j := wantAsync(t, via(n).process(t, small, nil))
		via(n).waitTerminal(t, j, clusterJobTimeout)
	}

	// The emergency switch, through n1: the async path closes on n2 and n3.
	p = n1.setRollout(t, false, 100, 10)
	for _, n := range []*testNode{n2, n3} {
		n.waitPolicy(t, p)
		r := via(n).upload(t, small, nil)
		r.wantProblem(t, http.StatusServiceUnavailable)
		wantRoute(t, r, "async")
		wantSync(t, via(n).process(t, small, nil), 3)
	}

	// Durable: the ledger's node restarts with it, and so do the others' copies.
	n1.stop()
	n1.start()
	c.waitAllAlive(t, c.nodes...)
	for _, n := range c.nodes {
		if got := n.rollout(t); got != p {
			t.Errorf("%s after the ledger's node restarted: policy %+v, want %+v", n.name, got, p)
		}
	}
	p = n3.setRollout(t, true, 100, 10)
	if p.Version != 4 {
		t.Errorf("version after four changes and a restart: %d, want 4", p.Version)
	}
	for _, n := range c.nodes {
		n.waitPolicy(t, p)
	}
	wantAsync(t, via(n1).process(t, small, nil))
}

// TestRolloutEmergencySwitch: jobs run; the async path is switched off.
// New POST /v1/jobs calls get 503 with Retry-After, the legacy entry answers
// synchronously, and the jobs that were running complete with exact credits.
// A node started with QUIRE_ASYNC_ENABLED=false switches it off likewise.
func TestRolloutEmergencySwitch(t *testing.T) {
	t.Parallel()
	manifest := corpusManifest(t)
	medium, small := corpusFile(t, mediumPDF), corpusFile(t, smallPDF)
	pages := manifest[mediumPDF].Pages
	n := startNode(t, "--concurrency", "1")
	const granted = 10000
	c, _ := n.newAccount(t, "switch", granted)

	var running []jobView
	for range 3 {
		running = append(running, c.submit(t, medium, map[string]string{"chunk_pages": "2"}))
	}
	c.watch(t, running[0], jobTimeout, func(j jobView) bool { return j.Chunks.Done > 0 })

	p := n.setRollout(t, false, 100, 10)
	if got := n.rollout(t); got != p {
		t.Fatalf("policy right after the switch: %+v, want %+v", got, p)
	}
	unfinished := 0
	for _, j := range running {
		if !terminalStatus[c.job(t, j.ID).Status] {
			unfinished++
		}
	}
	if unfinished == 0 {
		t.Fatal("every job had ended when the switch went off: the test needs them running")
	}
	t.Logf("switched off with %d of %d jobs still running", unfinished, len(running))

	var before struct {
		Jobs []jobView `json:"jobs"`
	}
	c.get(t, "/v1/jobs?limit=200").decode(t, http.StatusOK, &before)
	r := c.upload(t, small, nil)
	pr := r.wantProblem(t, http.StatusServiceUnavailable)
	wantRoute(t, r, "async")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("503 with Retry-After %q, want a number of seconds", r.Header.Get("Retry-After"))
	}
	t.Logf("POST /v1/jobs while switched off: 503 %q", pr.Detail)
	var after struct {
		Jobs []jobView `json:"jobs"`
	}
	c.get(t, "/v1/jobs?limit=200").decode(t, http.StatusOK, &after)
	if len(after.Jobs) != len(before.Jobs) {
		t.Errorf("a refused POST /v1/jobs made a job: %d jobs, then %d", len(before.Jobs), len(after.Jobs))
	}

	// The legacy entry answers in the request, though percentage 100 and the
	// running jobs ahead of it.
	res := wantSync(t, c.process(t, small, nil), 3)
	c.jobRoute(t, res.JobID, "sync")

	for _, j := range running {
		final, _ := c.waitTerminal(t, j, jobTimeout)
		if final.Status != "completed" || final.Credits != (jobCredits{Reserved: int64(pages), Charged: int64(pages)}) {
			t.Errorf("job %s, running at the switch, ended %s with credits %+v", j.ID, final.Status, final.Credits)
		}
		pageTexts(t, c.result(t, j.ID), pages)
	}
	charged := int64(3*pages + 3)
	if diff := cmp.Diff(standing{Balance: granted - charged, Available: granted - charged, Granted: granted, Charged: charged},
		c.credits(t).standing()); diff != "" {
		t.Errorf("credits after the switch (-want +got):\n%s", diff)
	}

	t.Run("QUIRE_ASYNC_ENABLED=false at start", func(t *testing.T) {
		m := startNodeEnv(t, []string{"QUIRE_ASYNC_ENABLED=false"})
		want := rolloutView{AsyncEnabled: false, Percentage: 100, SizeThresholdMB: 10, Version: 1}
		got := m.rollout(t)
		got.UpdatedAt = ""
		if got != want {
			t.Fatalf("policy of a node started with QUIRE_ASYNC_ENABLED=false: %+v, want %+v", got, want)
		}
		mc := m.client(m.demoKey)
		r := mc.upload(t, small, nil)
		r.wantProblem(t, http.StatusServiceUnavailable)
		wantRoute(t, r, "async")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After: %s", r)
		}
		wantSync(t, mc.process(t, small, nil), 3)

		// Started again without it, the node leaves the policy as it is;
		// started again with it, it writes nothing (the version stays).
		m.env = nil
		m.stop()
		m.start()
		if got := m.rollout(t); got.AsyncEnabled || got.Version != 1 {
			t.Fatalf("after a restart without QUIRE_ASYNC_ENABLED: %+v, want version 1, switched off", got)
		}
		m.env = []string{"QUIRE_ASYNC_ENABLED=false"}
		m.stop()
		m.start()
		if got := m.rollout(t); got.AsyncEnabled || got.Version != 1 {
			t.Fatalf("after a restart with QUIRE_ASYNC_ENABLED=false again: %+v, want version 1", got)
		}
		m.env = []string{"QUIRE_ASYNC_ENABLED=true"}
		m.stop()
		m.start()
		if got := m.rollout(t); !got.AsyncEnabled || got.Version != 2 {
			t.Fatalf("after a restart with QUIRE_ASYNC_ENABLED=true: %+v, want version 2, switched on", got)
		}
		mc.submit(t, small, nil)
	})
}

// TestRolloutSyncBounds: on the sync path, a PDF above --sync-max-pages is
// refused with 413 before anything is charged, and a job that outlasts
// --sync-timeout is cancelled, answered 504, and its unprocessed pages are
// refunded (reserved = charged + refunded).
func TestRolloutSyncBounds(t *testing.T) {
	t.Parallel()
	large := corpusFile(t, largePDF)
	largePages := corpusManifest(t)[largePDF].Pages
	over := filepath.Join(t.TempDir(), "1201p.pdf")
	fh, err := os.Create(over)
	if err != nil {
		t.Fatal(err)
	}
	if err := pdfgen.Generate(fh, 1201, 0); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "--concurrency", "1", "--sync-max-pages", "1200", "--sync-timeout", "1s")
	n.setRollout(t, true, 0, 10) // small uploads go sync
	const granted = 5000
	c, _ := n.newAccount(t, "bounds", granted)

	t.Run("above --sync-max-pages", func(t *testing.T) {
		before := c.credits(t)
		r := c.process(t, over, nil)
		p := r.wantProblem(t, http.StatusRequestEntityTooLarge)
		wantRoute(t, r, "sync")
		if !strings.Contains(p.Detail, "1200") || !strings.Contains(p.Detail, "1201") {
			t.Errorf("413 detail %q does not give the page count and the limit", p.Detail)
		}
		after := c.credits(t)
		if diff := cmp.Diff(before.standing(), after.standing()); diff != "" {
			t.Errorf("credits moved for a refused sync request (-before +after):\n%s", diff)
		}
		if len(after.Entries) != len(before.Entries) {
			t.Errorf("ledger entries for a refused sync request: %d, then %d", len(before.Entries), len(after.Entries))
		}
		var list struct {
			Jobs []jobView `json:"jobs"`
		}
		c.get(t, "/v1/jobs").decode(t, http.StatusOK, &list)
		if len(list.Jobs) != 0 {
			t.Errorf("a refused sync request made jobs: %+v", list.Jobs)
		}
		if left := n.tmpFiles(t); len(left) != 0 {
			t.Errorf("temporary files left by a refused sync request: %v", left)
		}
	})

	t.Run("past --sync-timeout", func(t *testing.T) {
		r := c.process(t, large, map[string]string{"chunk_pages": "1"})
		p := r.wantProblem(t, http.StatusGatewayTimeout)
		if p.Code != "timeout" {
			t.Errorf("504 code %q, want timeout", p.Code)
		}
		wantRoute(t, r, "sync")
		loc := r.Header.Get("Location")
		id, ok := strings.CutPrefix(loc, "/v1/jobs/")
		if !ok || id == "" || !strings.Contains(p.Detail, id) || !strings.Contains(p.Detail, "refunded") {
			t.Fatalf("504 with Location %q and detail %q: want the job's id in both, and the refund in the detail", loc, p.Detail)
		}
		t.Logf("504: %q", p.Detail)
		j := c.jobRoute(t, id, "sync")
		final, _ := c.waitTerminal(t, j, jobTimeout)
		if final.Status != "cancelled" {
			t.Fatalf("the job past the deadline ended %s, want cancelled", final.Status)
		}
		res := c.result(t, id)
		charged := donePages(res)
		pageTexts(t, res, largePages)
		if charged >= int64(largePages) {
			t.Errorf("all %d pages were processed: the deadline cut nothing", largePages)
		}
		if diff := cmp.Diff(jobCredits{Reserved: int64(largePages), Charged: charged, Refunded: int64(largePages) - charged}, final.Credits); diff != "" {
			t.Errorf("credits of the job past the deadline (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(standing{Balance: granted - charged, Available: granted - charged, Granted: granted, Charged: charged},
			c.credits(t).standing()); diff != "" {
			t.Errorf("credits after the deadline (-want +got):\n%s", diff)
		}
	})

	// A client that hangs up on a sync request: its job is cancelled and
	// the request is counted with status 499 (client_closed), which no
	// client sees.
	t.Run("client gone", func(t *testing.T) {
		closed := map[string]string{"route": "/v1/process", "method": "POST", "status": strconv.Itoa(problemStatus(t, "client_closed"))}
		before := n.scrapeMetrics(t, "").valueOr0("quire_http_requests_total", closed)
		body, ct := multipartBody(t, large, map[string]string{"chunk_pages": "1"})
		created := len(n.logRecords(t, "job created", map[string]string{"route": "sync"}))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { // hang up once the job exists, well before --sync-timeout
			for ctx.Err() == nil && len(n.logRecords(t, "job created", map[string]string{"route": "sync"})) == created {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
		}()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url+"/v1/process", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", ct)
		if res, err := n.http.Do(req); err == nil {
			res.Body.Close()
			t.Fatalf("the sync request was answered %s before the client hung up", res.Status)
		}
		pollUntil(t, 30*time.Second, "a 499 (client_closed) counted", func() bool {
			return n.scrapeMetrics(t, "").valueOr0("quire_http_requests_total", closed) > before
		})
		recs := n.logRecords(t, "sync request abandoned by the client: job cancelled", nil)
		if len(recs) == 0 {
			t.Fatal("no log record of the abandoned sync request")
		}
		j := c.jobRoute(t, recs[len(recs)-1].Attrs["job"], "sync")
		if final, _ := c.waitTerminal(t, j, jobTimeout); final.Status != "cancelled" {
			t.Errorf("the abandoned sync job ended %s, want cancelled", final.Status)
		}
	})
}

// problemStatus is the documented status of a problem code.
func problemStatus(tb testing.TB, code string) int {
	tb.Helper()
	for _, pc := range httpapi.ProblemCodes {
		if pc.Code == code {
			return pc.Status
		}
	}
	tb.Fatalf("no documented problem code %q", code)
	return 0
}
