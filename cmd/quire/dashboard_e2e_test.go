package main

// The dashboard, end to end: its login and session rules over plain HTTP
// (TestDashboardAuth), the pages in a real headless browser, Debian's chromium
// driven by playwright-core (TestDashboardBrowser), and the cluster-wide view
// (TestDashboardCluster).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dashSpecDir holds the browser script, its package.json and lock, and (after
// `npm ci` there, which .ci/run does) node_modules/playwright-core.
const dashSpecDir = "testdata/dashboard"

// ---- the dashboard's JSON shapes

type dashJobView struct {
	jobView
	AccountID     string `json:"account_id"`
	AccountNumber int64  `json:"account_number"`
	Node          string `json:"node"`
	PagesDone     int64  `json:"pages_done"`
}

type dashJobDetailView struct {
	dashJobView
	ChunkList []chunkView `json:"chunk_list"`
}

type dashOverviewView struct {
	Node    string `json:"node"`
	Members []struct {
		memberView
		Ledger bool `json:"ledger"`
		Self   bool `json:"self"`
	} `json:"members"`
	Alive      int `json:"alive"`
	Capacity   int `json:"capacity"`
	Load       int `json:"load"`
	Queued     int `json:"queued"`
	Unfinished struct {
		Queued, Running, Cancelling int
	} `json:"unfinished"`
	Rollout struct {
		AsyncEnabled    bool  `json:"async_enabled"`
		Percentage      int   `json:"percentage"`
		SizeThresholdMB int   `json:"size_threshold_mb"`
		Version         int64 `json:"version"`
	} `json:"rollout"`
	Stats struct {
		Buckets []struct {
			Start     int64 `json:"start"`
			Completed int   `json:"completed"`
			Cancelled int   `json:"cancelled"`
			Pages     int64 `json:"pages"`
		} `json:"buckets"`
		Finished       int     `json:"finished"`
		Completed      int     `json:"completed"`
		Cancelled      int     `json:"cancelled"`
		Pages          int64   `json:"pages"`
		JobsPerMinute  float64 `json:"jobs_per_minute"`
		PagesPerSecond float64 `json:"pages_per_second"`
		ErrorRate      float64 `json:"error_rate"`
	} `json:"stats"`
	Jobs    []dashJobView `json:"jobs"`
	Missing []string      `json:"missing"`
}

func (o dashOverviewView) job(id string) (dashJobView, bool) {
	for _, j := range o.Jobs {
		if j.ID == id {
			return j, true
		}
	}
	return dashJobView{}, false
}

// ---- a browser-less dashboard client

// dashClient talks to one node's dashboard like a browser would: a session
// cookie once logged in, redirects not followed.
type dashClient struct {
	n       *testNode
	http    *http.Client
	session string // the cookie's value, "" before login
}

func newDashClient(n *testNode) *dashClient {
	return &dashClient{n: n, http: &http.Client{
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request with the session cookie (if any) and the extra headers.
func (c *dashClient) do(tb testing.TB, method, path string, body io.Reader, header http.Header) *response {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, c.n.url+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.session != "" {
		req.AddCookie(&http.Cookie{Name: "quire_dashboard", Value: c.session})
	}
	res, err := c.http.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: b}
}

// login posts token to the login form and returns the answer.
func (c *dashClient) login(tb testing.TB, token string, header http.Header) *response {
	tb.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, v := range header {
		h[k] = v
	}
	return c.do(tb, http.MethodPost, "/dashboard/login", strings.NewReader(url.Values{"token": {token}}.Encode()), h)
}

// mustLogin logs in with the node's admin token and keeps the session.
func (c *dashClient) mustLogin(tb testing.TB) *http.Cookie {
	tb.Helper()
	r := c.login(tb, c.n.adminToken, nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/dashboard" {
		tb.Fatalf("login with the admin token: want 303 to /dashboard: %s", r)
	}
	ck := sessionCookie(tb, r)
	c.session = ck.Value
	return ck
}

func sessionCookie(tb testing.TB, r *response) *http.Cookie {
	tb.Helper()
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == "quire_dashboard" {
			return ck
		}
	}
	tb.Fatalf("no quire_dashboard cookie set: %s (headers %v)", r, r.Header)
	return nil
}

func (c *dashClient) overview(tb testing.TB) dashOverviewView {
	tb.Helper()
	var ov dashOverviewView
	c.do(tb, http.MethodGet, "/dashboard/api/overview", nil, nil).decode(tb, http.StatusOK, &ov)
	return ov
}

// writeHeader is what the dashboard's script sends with state-changing requests.
var writeHeader = http.Header{"X-Quire-Dashboard": {"1"}}

func withHeaders(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = v
		}
	}
	return out
}

// wantLoginPage fails unless r is the login form answered with status.
func wantLoginPage(tb testing.TB, r *response, status int) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("want the login form with %d: %s", status, r)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		tb.Fatalf("login form with Content-Type %q: %s", ct, r)
	}
	if !strings.Contains(string(r.Body), `name="token"`) || !strings.Contains(string(r.Body), `action="/dashboard/login"`) {
		tb.Fatalf("no login form in the answer: %s", r)
	}
}

// firstEvent opens the events stream and returns its first event's name and data.
func (c *dashClient) firstEvent(tb testing.TB) (string, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.n.url+"/dashboard/api/events", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "quire_dashboard", Value: c.session})
	res, err := c.http.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		tb.Fatalf("events: %s, Content-Type %q", res.Status, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event != "" {
			return event, []byte(v)
		}
	}
	tb.Fatalf("events stream ended without an event: %v", sc.Err())
	return "", nil
}

// ---- tests

// TestDashboardAuth checks, over plain HTTP, that the dashboard and every data
// endpoint answer 401 without the admin token, how logging in sets the session
// cookie, the cross-site request checks, and the data endpoints with a session.
func TestDashboardAuth(t *testing.T) {
	n := startNode(t, "--concurrency", "1", "--max-login-failures", "0") // many wrong admin credentials on purpose
	acct, acctID := n.newAccount(t, "dash-auth", 100_000)
	pdf := corpusFile(t, fourPagePDF)
	j := acct.submit(t, pdf, nil)
	acct.waitTerminal(t, j, time.Minute)

	anon := newDashClient(n)
	// Pages: the login form, 401.
	for _, p := range []string{"/dashboard", "/dashboard/jobs/" + j.ID, "/dashboard/no-such-page"} {
		wantLoginPage(t, anon.do(t, http.MethodGet, p, nil, nil), http.StatusUnauthorized)
	}
	// Data endpoints: 401 problem+json, whatever else is sent instead of the
	// admin token.
	endpoints := []struct{ method, path string }{
		{http.MethodGet, "/dashboard/api/overview"},
		{http.MethodGet, "/dashboard/api/events"},
		{http.MethodGet, "/dashboard/api/jobs"},
		{http.MethodPost, "/dashboard/api/jobs?account=" + acctID},
		{http.MethodGet, "/dashboard/api/jobs/" + j.ID},
		{http.MethodPost, "/dashboard/api/jobs/" + j.ID + "/cancel"},
		{http.MethodGet, "/dashboard/api/rollout"},
		{http.MethodPut, "/dashboard/api/rollout"},
		{http.MethodGet, "/dashboard/api/local"},
		{http.MethodGet, "/dashboard/api/no-such-endpoint"},
	}
	forged := newDashClient(n)
	forged.session = "bm90LWEtc2Vzc2lvbg"
	without := map[string]func(method, path string) *response{
		"no credentials":  func(m, p string) *response { return anon.do(t, m, p, nil, writeHeader) },
		"a forged cookie": func(m, p string) *response { return forged.do(t, m, p, nil, writeHeader) },
		"an account's API key": func(m, p string) *response {
			return anon.do(t, m, p, nil, withHeaders(writeHeader, http.Header{"Authorization": {"Bearer " + acct.token}}))
		},
		"a wrong cluster secret": func(m, p string) *response {
			return anon.do(t, m, p, nil, withHeaders(writeHeader, http.Header{"X-Quire-Cluster-Secret": {"guess"}, "X-Quire-Forwarded-By": {"n9"}}))
		},
	}
	for what, call := range without {
		for _, e := range endpoints {
			r := call(e.method, e.path)
			if _, err := r.problemErr(http.StatusUnauthorized); err != nil {
				t.Errorf("with %s: %v", what, err)
			}
		}
	}
	// The script and stylesheet are public (the login page needs them) and
	// name nothing outside the node.
	for _, p := range []string{"/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css"} {
		r := anon.do(t, http.MethodGet, p, nil, nil)
		if r.Status != http.StatusOK || len(r.Body) == 0 {
			t.Fatalf("%s", r)
		}
		if strings.Contains(string(r.Body), "http://") && !strings.Contains(string(r.Body), "http://www.w3.org/2000/svg") || strings.Contains(string(r.Body), "https://") {
			t.Errorf("%s names an outside URL", p)
		}
	}

	// Logging in: a wrong token is 401, a cross-site form post 403.
	wantLoginPage(t, anon.login(t, "qa_wrong", nil), http.StatusUnauthorized)
	wantLoginPage(t, anon.login(t, acct.token, nil), http.StatusUnauthorized)
	if r := anon.login(t, n.adminToken, http.Header{"Origin": {"https://evil.example"}}); r.Status != http.StatusForbidden {
		t.Errorf("a cross-origin login: want 403: %s", r)
	}
	if r := anon.login(t, n.adminToken, http.Header{"Sec-Fetch-Site": {"cross-site"}}); r.Status != http.StatusForbidden {
		t.Errorf("a cross-site login: want 403: %s", r)
	}
	// Over TLS (here: a proxy that says so) the cookie is Secure.
	tls := newDashClient(n)
	if ck := sessionCookie(t, tls.login(t, n.adminToken, http.Header{"X-Forwarded-Proto": {"https"}})); !ck.Secure {
		t.Errorf("behind TLS the session cookie is not Secure: %+v", ck)
	}
	s := newDashClient(n)
	ck := s.mustLogin(t)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/dashboard" || ck.MaxAge <= 0 || len(ck.Value) < 40 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, Path=/dashboard, an expiry and a long random value", ck)
	}

	// With the session: the pages and the data.
	for _, p := range []string{"/dashboard", "/dashboard/jobs/" + j.ID} {
		r := s.do(t, http.MethodGet, p, nil, nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), j.ID[len(j.ID)-8:]) {
			t.Fatalf("%s with a session: want 200 naming the job: %s", p, r)
		}
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", p, csp)
		}
	}
	ov := s.overview(t)
	if ov.Node != n.name || ov.Alive != 1 || len(ov.Members) != 1 || !ov.Members[0].Ledger || !ov.Members[0].Self || ov.Capacity != 1 {
		t.Errorf("overview of a single node: %+v", ov)
	}
	row, ok := ov.job(j.ID)
	if !ok || row.Status != "completed" || row.Progress != 1 || row.AccountID != acctID || row.Node != n.name || row.PagesDone != int64(row.Pages) {
		t.Errorf("overview row of the job: %+v (found %v)", row, ok)
	}
	if ov.Stats.Completed < 1 || ov.Stats.Pages < int64(row.Pages) || ov.Stats.ErrorRate != 0 || len(ov.Stats.Buckets) != 60 {
		t.Errorf("throughput: %+v", ov.Stats)
	}
	var d dashJobDetailView
	s.do(t, http.MethodGet, "/dashboard/api/jobs/"+j.ID, nil, nil).decode(t, http.StatusOK, &d)
	if d.ID != j.ID || len(d.ChunkList) != d.Chunks.Total || d.ChunkList[0].Node != n.name || d.ChunkList[0].Status != "done" || d.ChunkList[0].Attempts != 1 {
		t.Errorf("job detail: %+v", d)
	}
	if ev, data := s.firstEvent(t); ev != "overview" || !strings.Contains(string(data), j.ID) {
		t.Errorf("first event %q: %.300s", ev, data)
	}
	// The admin token as a bearer credential opens the data too.
	admin := withHeaders(http.Header{"Authorization": {"Bearer " + n.adminToken}})
	if r := anon.do(t, http.MethodGet, "/dashboard/api/jobs?status=completed", nil, admin); r.Status != http.StatusOK || !strings.Contains(string(r.Body), j.ID) {
		t.Errorf("jobs with the admin token: %s", r)
	}
	s.do(t, http.MethodGet, "/dashboard/api/jobs?status=bogus", nil, nil).wantProblem(t, http.StatusUnprocessableEntity)

	// State-changing requests with a session need the header and the same origin.
	cancelPath := "/dashboard/api/jobs/" + j.ID + "/cancel"
	if r := s.do(t, http.MethodPost, cancelPath, nil, nil); r.Status != http.StatusForbidden {
		t.Errorf("a POST without %s: want 403: %s", "X-Quire-Dashboard", r)
	}
	if r := s.do(t, http.MethodPost, cancelPath, nil, withHeaders(writeHeader, http.Header{"Sec-Fetch-Site": {"cross-site"}})); r.Status != http.StatusForbidden {
		t.Errorf("a cross-site POST: want 403: %s", r)
	}
	s.do(t, http.MethodPost, cancelPath, nil, writeHeader).wantProblem(t, http.StatusConflict) // it has ended

	// The upload form, for the account chosen.
	body, ct := multipartBody(t, pdf, map[string]string{"chunk_pages": "1"})
	up := s.do(t, http.MethodPost, "/dashboard/api/jobs?account="+acctID, body, withHeaders(writeHeader, http.Header{"Content-Type": {ct}}))
	var created dashJobView
	up.decode(t, http.StatusAccepted, &created)
	if created.AccountID != acctID || created.Chunks.Total != created.Pages || created.Node != n.name {
		t.Errorf("uploaded job: %+v", created)
	}
	if got := acct.job(t, created.ID); got.ID != created.ID { // the account sees it as its own
		t.Errorf("the account does not see the uploaded job: %+v", got)
	}
	body, ct = multipartBody(t, pdf, nil)
	s.do(t, http.MethodPost, "/dashboard/api/jobs?account=acct_nobody", body, withHeaders(writeHeader, http.Header{"Content-Type": {ct}})).
		wantProblem(t, http.StatusUnprocessableEntity)

	// The rollout controls change the cluster's policy.
	put := func(v string) *response {
		return s.do(t, http.MethodPut, "/dashboard/api/rollout", strings.NewReader(v), withHeaders(writeHeader, http.Header{"Content-Type": {"application/json"}}))
	}
	var pol struct {
		Percentage int   `json:"percentage"`
		Version    int64 `json:"version"`
	}
	put(`{"async_enabled":true,"percentage":30,"size_threshold_mb":10}`).decode(t, http.StatusOK, &pol)
	var seen struct {
		Percentage int `json:"percentage"`
	}
	n.admin().get(t, "/v1/admin/rollout").decode(t, http.StatusOK, &seen)
	if pol.Percentage != 30 || pol.Version < 1 || seen.Percentage != 30 {
		t.Errorf("rollout set from the dashboard: %+v; /v1/admin/rollout says %+v", pol, seen)
	}
	put(`{"async_enabled":true,"percentage":130,"size_threshold_mb":10}`).wantProblem(t, http.StatusUnprocessableEntity)
	put(`{"percentage":100}`).wantProblem(t, http.StatusUnprocessableEntity)

	// Logging out ends the session.
	if r := s.do(t, http.MethodPost, "/dashboard/logout", nil, nil); r.Status != http.StatusSeeOther || sessionCookie(t, r).MaxAge >= 0 {
		t.Errorf("logout: want 303 clearing the cookie: %s", r)
	}
	wantLoginPage(t, s.do(t, http.MethodGet, "/dashboard", nil, nil), http.StatusUnauthorized)
	s.do(t, http.MethodGet, "/dashboard/api/overview", nil, nil).wantProblem(t, http.StatusUnauthorized)
}

// TestDashboardCluster checks that any node's dashboard shows and acts on the
// whole cluster: jobs of another node listed and opened, cancelled through
// it, members and ledger shown; and that a session is the node's own.
func TestDashboardCluster(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	acct2, _ := n2.newAccount(t, "dash-cluster", 100_000)
	done := acct2.submit(t, corpusFile(t, fourPagePDF), nil) // accepted by n2: it lives there
	acct2.waitTerminal(t, done, time.Minute)
	long := acct2.submit(t, corpusFile(t, largePDF), map[string]string{"chunk_pages": "2"})

	s := newDashClient(n1)
	s.mustLogin(t)
	ov := s.overview(t)
	if ov.Alive != 2 || ov.Capacity != 2 || len(ov.Missing) != 0 {
		t.Errorf("overview on n1: alive %d, capacity %d, missing %v", ov.Alive, ov.Capacity, ov.Missing)
	}
	leader := n1.clusterView(t).Leader
	for _, m := range ov.Members {
		if m.Ledger != (m.Name == leader) || m.Self != (m.Name == "n1") || m.State != "alive" {
			t.Errorf("member %+v: the Raft leader is %s and this node n1", m, leader)
		}
	}
	for _, id := range []string{done.ID, long.ID} {
		row, ok := ov.job(id)
		if !ok || row.Node != "n2" {
			t.Errorf("n1's overview lacks n2's job %s, or names another owner: %+v", id, row)
		}
	}
	if ov.Stats.Completed < 1 {
		t.Errorf("n1's throughput does not count n2's finished job: %+v", ov.Stats)
	}
	var d dashJobDetailView
	s.do(t, http.MethodGet, "/dashboard/api/jobs/"+done.ID, nil, nil).decode(t, http.StatusOK, &d)
	if d.ID != done.ID || d.Node != "n2" || len(d.ChunkList) == 0 {
		t.Errorf("n2's job read through n1: %+v", d)
	}
	if r := s.do(t, http.MethodGet, "/dashboard/jobs/"+done.ID, nil, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), done.ID) {
		t.Errorf("n2's job page on n1: %s", r)
	}
	s.do(t, http.MethodGet, "/dashboard/api/jobs/01900000-0000-7000-8000-000000000000", nil, nil).wantProblem(t, http.StatusNotFound)

	// Cancel n2's running job from n1's dashboard.
	var cancelled dashJobView
	s.do(t, http.MethodPost, "/dashboard/api/jobs/"+long.ID+"/cancel", nil, writeHeader).decode(t, http.StatusOK, &cancelled)
	if cancelled.ID != long.ID || (cancelled.Status != "cancelling" && cancelled.Status != "cancelled") {
		t.Errorf("cancel through n1: %+v", cancelled)
	}
	final, _ := acct2.waitTerminal(t, long, clusterJobTimeout)
	if final.Status != "cancelled" || final.Credits.Refunded == 0 || final.Credits.Reserved != final.Credits.Charged+final.Credits.Refunded {
		t.Errorf("job cancelled from the dashboard: %+v", final)
	}

	// A session is known to the node that opened it only.
	other := newDashClient(n2)
	other.session = s.session
	other.do(t, http.MethodGet, "/dashboard/api/overview", nil, nil).wantProblem(t, http.StatusUnauthorized)
}

// TestDashboardBrowser logs in to the dashboard in headless chromium, uploads
// a PDF from the form and watches its row reach 100 %, cancels a long job
// with its button, opens its page (per-chunk status and node), logs out, and
// saves screenshots; the node's REST API then confirms what the page showed.
func TestDashboardBrowser(t *testing.T) {
	chromium, nodeJS := browserTools(t)
	artifacts := os.Getenv("QUIRE_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join("testdata", "artifacts")
	}
	artifacts, err := filepath.Abs(artifacts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o750); err != nil {
		t.Fatal(err)
	}
	small, large := corpusFile(t, mediumPDF), corpusFile(t, largePDF)

	n := startNode(t, "--concurrency", "1")
	acct, acctID := n.newAccount(t, "dash-browser", 100_000)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeJS, "dashboard.spec.mjs")
	cmd.Dir = dashSpecDir
	cmd.Env = childEnv(
		"QUIRE_URL="+n.url, "QUIRE_ADMIN_TOKEN="+n.adminToken, "DASH_ACCOUNT="+acctID,
		"DASH_SMALL_PDF="+small, "DASH_LARGE_PDF="+large, "DASH_ARTIFACTS="+artifacts, "DASH_CHROMIUM="+chromium,
	)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("browser script ran %s; its log:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	t.Logf("screenshots in %s (dashboard.png, dashboard-job.png)", artifacts)
	if runErr != nil {
		t.Fatalf("browser script: %v\nstdout: %s", runErr, stdout.String())
	}
	var seen struct {
		ForeignRequests []string       `json:"foreign_requests"`
		PageErrors      []string       `json:"page_errors"`
		ConsoleErrors   []string       `json:"console_errors"`
		SmallJob        string         `json:"small_job"`
		ProgressSeen    []string       `json:"progress_seen"`
		SmallStatus     string         `json:"small_status"`
		LargeJob        string         `json:"large_job"`
		LargeStatus     string         `json:"large_status"`
		FinishedShown   int            `json:"finished_shown"`
		ChunkRows       int            `json:"chunk_rows"`
		ChunkStatuses   map[string]int `json:"chunk_statuses"`
		ChunkNodes      []string       `json:"chunk_nodes"`
		AfterLogout     int            `json:"after_logout_status"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &seen); err != nil {
		t.Fatalf("browser script output: %v: %q", err, stdout.String())
	}
	t.Logf("the page showed progress %v for the %s job", seen.ProgressSeen, mediumPDF)
	if len(seen.ForeignRequests) != 0 {
		t.Errorf("the dashboard loaded from elsewhere: %v", seen.ForeignRequests)
	}
	if len(seen.PageErrors) != 0 {
		t.Errorf("script errors in the page: %v", seen.PageErrors)
	}
	for _, e := range seen.ConsoleErrors {
		// The expected 401s (the login form, and after logout) are logged
		// by the browser as failed loads; anything else (a CSP violation, a
		// 404) is a fault.
		if !strings.Contains(e, "status of 401") {
			t.Errorf("browser console error: %s", e)
		}
	}
	if seen.AfterLogout != http.StatusUnauthorized {
		t.Errorf("a page after logging out answered %d, want 401", seen.AfterLogout)
	}

	// What the page showed is what the REST API says.
	small1 := acct.job(t, seen.SmallJob)
	if small1.Status != "completed" || seen.SmallStatus != "completed" || small1.Progress != 1 || small1.Credits.Charged != int64(small1.Pages) {
		t.Errorf("uploaded job: the API says %+v, the page said %s", small1, seen.SmallStatus)
	}
	if last := seen.ProgressSeen[len(seen.ProgressSeen)-1]; last != "100%" {
		t.Errorf("the row's progress ended at %s", last)
	}
	large1, _ := acct.waitTerminal(t, jobView{ID: seen.LargeJob}, time.Minute)
	if large1.Status != "cancelled" || seen.LargeStatus != "cancelled" || large1.Credits.Refunded == 0 ||
		large1.Credits.Reserved != large1.Credits.Charged+large1.Credits.Refunded {
		t.Errorf("cancelled job: the API says %+v, the page said %s", large1, seen.LargeStatus)
	}
	if seen.ChunkRows != large1.Chunks.Total || seen.ChunkStatuses["cancelled"] != large1.Chunks.Cancelled ||
		seen.ChunkStatuses["done"] != large1.Chunks.Done || fmt.Sprint(seen.ChunkNodes) != fmt.Sprint([]string{n.name}) {
		t.Errorf("job page: %d chunk rows %v on nodes %v; the API says %+v", seen.ChunkRows, seen.ChunkStatuses, seen.ChunkNodes, large1.Chunks)
	}
	if seen.FinishedShown < 2 {
		t.Errorf("the throughput showed %d jobs ended, want at least 2", seen.FinishedShown)
	}
	for _, f := range []string{"dashboard.png", "dashboard-job.png"} {
		if st, err := os.Stat(filepath.Join(artifacts, f)); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", f, err)
		}
	}
}

// browserTools returns the chromium and node binaries the browser tests
// drive (with playwright-core from dashSpecDir), or skips (fails in CI)
// naming what is missing.
func browserTools(tb testing.TB) (chromium, nodeJS string) {
	tb.Helper()
	chromium = os.Getenv("QUIRE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		needOrSkip(tb, "no chromium at %s (Debian: apt-get install chromium; or set QUIRE_CHROMIUM): %v", chromium, err)
	}
	nodeJS, err := exec.LookPath("node")
	if err != nil {
		needOrSkip(tb, "node (Node.js) is not installed (Debian: apt-get install nodejs)")
	}
	if _, err := os.Stat(filepath.Join(dashSpecDir, "node_modules", "playwright-core", "package.json")); err != nil {
		needOrSkip(tb, "playwright-core is not installed: run `npm ci --prefix cmd/quire/%s` (.ci/run does)", dashSpecDir)
	}
	return chromium, nodeJS
}
