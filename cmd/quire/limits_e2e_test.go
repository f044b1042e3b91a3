package main

// End-to-end tests of the limits of issue #5: Idempotency-Key on POST
// /v1/jobs (one node and across a cluster), per-account rate limits, the
// cluster-wide bound on an account's unfinished jobs, the bound on uploads
// received at once, the upload size limit enforced before the body is read,
// and the page limit.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fourPagePDF has one page more than smallPDF.
const fourPagePDF = "annapurna-features-4p.pdf"

// tryHeaders sends a request with extra headers; it fails no test, so it may
// run on any goroutine.
func (c *apiClient) tryHeaders(method, path string, body []byte, contentType string, headers map[string]string) (*response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.n.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.n.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return &response{Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// postKeyed uploads file (and fields) to POST /v1/jobs with an Idempotency-Key.
func (c *apiClient) postKeyed(tb testing.TB, key, file string, fields map[string]string) *response {
	tb.Helper()
	body, ct := multipartBody(tb, file, fields)
	r, err := c.tryHeaders(http.MethodPost, "/v1/jobs", body.Bytes(), ct, map[string]string{"Idempotency-Key": key})
	if err != nil {
		tb.Fatalf("POST /v1/jobs with Idempotency-Key %q: %v", key, err)
	}
	return r
}

// keyedJob decodes a 202 answer of POST /v1/jobs and says whether it was
// replayed (Idempotent-Replayed: true).
func keyedJob(tb testing.TB, r *response) (jobView, bool) {
	tb.Helper()
	var j jobView
	r.decode(tb, http.StatusAccepted, &j)
	if j.ID == "" {
		tb.Fatalf("202 without a job id: %s", r)
	}
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, "/v1/jobs/"+j.ID) {
		tb.Errorf("Location %q, want .../v1/jobs/%s", loc, j.ID)
	}
	replayed := r.Header.Get("Idempotent-Replayed")
	if replayed != "" && replayed != "true" {
		tb.Errorf("Idempotent-Replayed: %q, want true or absent", replayed)
	}
	return j, replayed == "true"
}

// reserveEntries counts the account's reservations among its recent entries.
func reserveEntries(cr creditsView) []string {
	var jobs []string
	for _, e := range cr.Entries {
		if e.Kind == "reserve" {
			jobs = append(jobs, e.JobID)
		}
	}
	return jobs
}

// wantRetryAfter checks that r carries Retry-After in whole seconds >= 1, and
// returns it.
func wantRetryAfter(tb testing.TB, r *response) time.Duration {
	tb.Helper()
	s, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || s < 1 {
		tb.Fatalf("Retry-After %q, want whole seconds >= 1: %s", r.Header.Get("Retry-After"), r)
	}
	return time.Duration(s) * time.Second
}

// checkNothingLeft fails if the node has upload files left in tmp.
func checkNothingLeft(tb testing.TB, n *testNode, what string) {
	tb.Helper()
	if left := n.tmpFiles(tb); len(left) > 0 {
		tb.Errorf("%s left files in <data-dir>/tmp: %v", what, left)
	}
}

// TestE2EIdempotencyKey: concurrent duplicates with one key make one job and
// one reservation; the others get that job (replayed) or 409 while it is
// being accepted; the key with another file or other fields is 422; keys are
// the account's; malformed keys are 400; nothing is left behind.
func TestE2EIdempotencyKey(t *testing.T) {
	t.Parallel()
	file := corpusFile(t, smallPDF)
	n := startNode(t)
	c, _ := n.newAccount(t, "idem", 1000)

	const dups = 8
	body, ct := multipartBody(t, file, nil)
	answers := make([]*response, dups)
	errs := make([]error, dups)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range dups {
		wg.Go(func() {
			<-start
			answers[i], errs[i] = c.tryHeaders(http.MethodPost, "/v1/jobs", body.Bytes(), ct, map[string]string{"Idempotency-Key": "order-17"})
		})
	}
	close(start)
	wg.Wait()
	ids := map[string]bool{}
	created, replayed, conflicts := 0, 0, 0
	for i, r := range answers {
		if errs[i] != nil {
			t.Fatalf("duplicate %d: %v", i, errs[i])
		}
		switch r.Status {
		case http.StatusAccepted:
			j, again := keyedJob(t, r)
			ids[j.ID] = true
			if again {
				replayed++
			} else {
				created++
			}
		case http.StatusConflict:
			r.wantProblem(t, http.StatusConflict)
			wantRetryAfter(t, r)
			conflicts++
		default:
			t.Fatalf("duplicate %d: want 202 or 409: %s", i, r)
		}
	}
	t.Logf("%d concurrent duplicates: %d created, %d replayed, %d answered 409", dups, created, replayed, conflicts)
	if created != 1 || len(ids) != 1 {
		t.Fatalf("%d duplicates made %d jobs (%d answers not replayed), want exactly one", dups, len(ids), created)
	}
	var id string
	for k := range ids {
		id = k
	}
	// A duplicate that got 409 retries and gets the job.
	j, again := keyedJob(t, c.postKeyed(t, "order-17", file, nil))
	if !again || j.ID != id {
		t.Errorf("retry after the first was accepted: job %s (replayed %v), want %s replayed", j.ID, again, id)
	}
	c.waitTerminal(t, j, jobTimeout) // so that the standing below stays put
	cr := c.credits(t)
	if got := reserveEntries(cr); !slices.Equal(got, []string{id}) {
		t.Errorf("reservations %v, want exactly one, for %s", got, id)
	}
	checkNothingLeft(t, n, "replayed and refused duplicates")
	if blobs := n.listDir(t, "blobs"); len(blobs) > 1 {
		t.Errorf("blobs %v: a replayed upload was kept", blobs)
	}

	// The key with another request: 422, nothing moves.
	before := cr.standing()
	for _, tc := range []struct {
		name   string
		file   string
		fields map[string]string
	}{
		{"another file", corpusFile(t, fourPagePDF), nil},
		{"other fields", file, map[string]string{"chunk_pages": "1"}},
	} {
		p := c.postKeyed(t, "order-17", tc.file, tc.fields).wantProblem(t, http.StatusUnprocessableEntity)
		if !strings.Contains(p.Detail, "Idempotency-Key") || !strings.Contains(p.Detail, id) {
			t.Errorf("%s: 422 detail %q does not name the key and its job %s", tc.name, p.Detail, id)
		}
	}
	if after := c.credits(t); after.standing() != before || len(reserveEntries(after)) != 1 {
		t.Errorf("mismatched keys moved credits: %+v -> %+v", before, after.standing())
	}
	checkNothingLeft(t, n, "mismatched keys")

	// Keys are the account's own: another account's order-17 is its job.
	other, _ := n.newAccount(t, "idem-other", 100)
	theirs, again := keyedJob(t, other.postKeyed(t, "order-17", file, nil))
	if again || theirs.ID == id {
		t.Errorf("another account's request with the same key: job %s (replayed %v), want a new job", theirs.ID, again)
	}
	// Without a key, the same upload is a new job each time.
	a, b := c.submit(t, file, nil), c.submit(t, file, nil)
	if a.ID == b.ID || a.ID == id {
		t.Errorf("uploads without a key made jobs %s and %s (keyed: %s)", a.ID, b.ID, id)
	}
	c.waitTerminal(t, a, jobTimeout)
	c.waitTerminal(t, b, jobTimeout)

	// Malformed keys: 400 before anything is received or charged.
	before = c.credits(t).standing()
	for _, key := range []string{strings.Repeat("k", 256), "clé", "\"\""} {
		c.postKeyed(t, key, file, nil).wantProblem(t, http.StatusBadRequest)
	}
	if after := c.credits(t).standing(); after != before {
		t.Errorf("malformed keys moved credits: %+v -> %+v", before, after)
	}
	// The draft's quoted form is the same key.
	if j, again := keyedJob(t, c.postKeyed(t, `"order-17"`, file, nil)); !again || j.ID != id {
		t.Errorf(`"order-17" (quoted): job %s (replayed %v), want %s replayed`, j.ID, again, id)
	}
	checkNothingLeft(t, n, "malformed keys")
}

// TestE2EIdempotencyKeyExpires: once --idempotency-ttl has passed, the key
// makes a new job; until then every answer is the first job, replayed.
func TestE2EIdempotencyKeyExpires(t *testing.T) {
	t.Parallel()
	file := corpusFile(t, smallPDF)
	n := startNode(t, "--idempotency-ttl", "2s")
	c, _ := n.newAccount(t, "ttl", 1000)
	first, again := keyedJob(t, c.postKeyed(t, "k", file, nil))
	if again {
		t.Fatalf("the key's first request was answered as replayed")
	}
	var next jobView
	pollUntil(t, time.Minute, "the key made a new job after its TTL", func() bool {
		j, again := keyedJob(t, c.postKeyed(t, "k", file, nil))
		if again {
			if j.ID != first.ID {
				t.Fatalf("replayed job %s, want %s", j.ID, first.ID)
			}
			return false
		}
		next = j
		return true
	})
	if next.ID == first.ID {
		t.Errorf("after the TTL the key answered the first job %s as new", first.ID)
	}
	if got := reserveEntries(c.credits(t)); len(got) != 2 {
		t.Errorf("reservations %v, want two (one per job)", got)
	}
	// And the new job holds the key now.
	if j, again := keyedJob(t, c.postKeyed(t, "k", file, nil)); again && j.ID != next.ID {
		t.Errorf("after the new job: replayed %s, want %s", j.ID, next.ID)
	}
	checkNothingLeft(t, n, "replays")
}

// TestE2EIdempotencyKeyLegacy: the legacy entry, routed async, honours the
// key too, and shares it with POST /v1/jobs.
func TestE2EIdempotencyKeyLegacy(t *testing.T) {
	t.Parallel()
	file := corpusFile(t, smallPDF)
	n := startNode(t)
	c, _ := n.newAccount(t, "legacy", 1000)
	body, ct := multipartBody(t, file, nil)
	post := func(path string) (jobView, bool) {
		t.Helper()
		r, err := c.tryHeaders(http.MethodPost, path, body.Bytes(), ct, map[string]string{"Idempotency-Key": "legacy-1"})
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		if got := r.Header.Get("X-Quire-Route"); got != "async" {
			t.Fatalf("POST %s took route %q, want async (the default policy): %s", path, got, r)
		}
		return keyedJob(t, r)
	}
	first, again := post("/v1/process")
	if again {
		t.Fatalf("first request answered as replayed")
	}
	for _, path := range []string{"/v1/process", "/v1/jobs"} {
		if j, again := post(path); !again || j.ID != first.ID {
			t.Errorf("POST %s with the key: job %s (replayed %v), want %s replayed", path, j.ID, again, first.ID)
		}
	}
	if got := reserveEntries(c.credits(t)); len(got) != 1 {
		t.Errorf("reservations %v, want one", got)
	}
	checkNothingLeft(t, n, "replayed legacy requests")
}

// TestE2EIdempotencyKeyLegacySync: on the legacy entry's sync path, a repeat
// with the same key answers the first request's result (200) and reserves
// nothing again; another body with the key is 422.
func TestE2EIdempotencyKeyLegacySync(t *testing.T) {
	t.Parallel()
	file := corpusFile(t, smallPDF)
	n := startNode(t)
	c, _ := n.newAccount(t, "legacy-sync", 1000)
	n.admin().do(t, http.MethodPut, "/v1/admin/rollout", strings.NewReader(`{"async_enabled":true,"percentage":0,"size_threshold_mb":10}`), "application/json").decode(t, http.StatusOK, &struct{}{})
	body, ct := multipartBody(t, file, nil)
	post := func(b []byte, ct string) *response {
		t.Helper()
		r, err := c.tryHeaders(http.MethodPost, "/v1/process", b, ct, map[string]string{"Idempotency-Key": "sync-1"})
		if err != nil {
			t.Fatalf("POST /v1/process: %v", err)
		}
		return r
	}
	var first, second struct {
		JobID  string `json:"job_id"`
		Status string `json:"status"`
	}
	r1 := post(body.Bytes(), ct)
	r1.decode(t, http.StatusOK, &first)
	r2 := post(body.Bytes(), ct)
	r2.decode(t, http.StatusOK, &second)
	if r1.Header.Get("X-Quire-Route") != "sync" || first.Status != "completed" || second.JobID != first.JobID || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("sync repeat: first %+v (route %q), second %+v (replayed %q); want the same completed job replayed",
			first, r1.Header.Get("X-Quire-Route"), second, r2.Header.Get("Idempotent-Replayed"))
	}
	if got := reserveEntries(c.credits(t)); len(got) != 1 {
		t.Errorf("reservations %v, want one", got)
	}
	other, oct := multipartBody(t, file, map[string]string{"chunk_pages": "1"})
	post(other.Bytes(), oct).wantProblem(t, http.StatusUnprocessableEntity)
	checkNothingLeft(t, n, "replayed sync requests")
}

// TestClusterIdempotencyKey: the ledger keeps the keys for the cluster: the
// same key on another node answers the job the first node made, read from
// that node.
func TestClusterIdempotencyKey(t *testing.T) {
	file := corpusFile(t, smallPDF)
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	acct, _ := n1.newAccount(t, "idem-cluster", 1000)
	via := func(n *testNode) *apiClient { return n.client(acct.token) }

	for _, order := range [][2]*testNode{{n1, n2}, {n2, n1}} {
		first, second := order[0], order[1]
		key := "cluster-key-" + first.name
		j, again := keyedJob(t, via(first).postKeyed(t, key, file, nil))
		if again {
			t.Fatalf("first request on %s answered as replayed", first.name)
		}
		r, again := keyedJob(t, via(second).postKeyed(t, key, file, nil))
		if !again || r.ID != j.ID {
			t.Errorf("the key of a job made on %s, sent to %s: job %s (replayed %v), want %s replayed", first.name, second.name, r.ID, again, j.ID)
		}
		if r.FileName != j.FileName || r.Pages != j.Pages {
			t.Errorf("replayed job through %s: %+v, want the job of %s: %+v", second.name, r, first.name, j)
		}
		via(second).postKeyed(t, key, file, map[string]string{"chunk_pages": "1"}).wantProblem(t, http.StatusUnprocessableEntity)
	}
	cr := via(n2).credits(t)
	if got := reserveEntries(cr); len(got) != 2 {
		t.Errorf("reservations %v, want two (one per key)", got)
	}
	for _, n := range c.nodes {
		checkNothingLeft(t, n, "replayed uploads on "+n.name)
	}
}

// TestE2ERateLimit: an account over its token bucket gets 429 with
// Retry-After and gets through again once it has waited that long; an account
// with its own, higher limits is not held to the node's; limits are
// validated.
func TestE2ERateLimit(t *testing.T) {
	t.Parallel()
	n := startNode(t, "--rate-limit-rps", "2", "--rate-limit-burst", "3")
	c, _ := n.newAccount(t, "limited", 10)
	fast, fastID := n.newAccount(t, "fast", 10)

	burst := func(c *apiClient) (ok int, limited []*response) {
		for range 10 {
			r := c.get(t, "/v1/credits")
			switch r.Status {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited = append(limited, r)
			default:
				t.Fatalf("want 200 or 429: %s", r)
			}
		}
		return ok, limited
	}
	ok, limited := burst(c)
	t.Logf("a burst of 10 at 2 requests/s, bucket of 3: %d answered, %d limited", ok, len(limited))
	if len(limited) == 0 {
		t.Fatalf("10 requests at once with a bucket of 3: none was limited")
	}
	var wait time.Duration
	for _, r := range limited {
		p := r.wantProblem(t, http.StatusTooManyRequests)
		if !strings.Contains(p.Detail, "rate limit") {
			t.Errorf("429 detail %q does not say it is the rate limit", p.Detail)
		}
		wait = wantRetryAfter(t, r)
	}
	// Retry-After is honoured: after it, the next request goes through.
	time.Sleep(wait)
	if r := c.get(t, "/v1/credits"); r.Status != http.StatusOK {
		t.Errorf("after waiting Retry-After (%s): %s", wait, r)
	}

	// Its own limits win over the node's.
	var set struct {
		AccountID string `json:"account_id"`
		Limits    struct {
			RequestsPerSecond float64 `json:"requests_per_second"`
			Burst             int     `json:"burst"`
		} `json:"limits"`
	}
	n.admin().do(t, http.MethodPut, "/v1/admin/accounts/"+fastID+"/limits", strings.NewReader(`{"requests_per_second": 1000, "burst": 100}`),
		"application/json").decode(t, http.StatusOK, &set)
	if set.AccountID != fastID || set.Limits.RequestsPerSecond != 1000 || set.Limits.Burst != 100 {
		t.Errorf("PUT limits answered %+v", set)
	}
	if ok, limited := burst(fast); len(limited) > 0 {
		t.Errorf("an account with its own limit of 1000/s: %d of 10 limited (%s)", len(limited), limited[0])
	} else if ok != 10 {
		t.Errorf("%d of 10 answered", ok)
	}
	// ... and the other account is still held to the node's.
	if _, limited := burst(c); len(limited) == 0 {
		t.Errorf("the account without its own limits was not limited by the node's")
	}

	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"negative rate", "/v1/admin/accounts/" + fastID + "/limits", `{"requests_per_second": -1}`, http.StatusUnprocessableEntity},
		{"negative active jobs", "/v1/admin/accounts/" + fastID + "/limits", `{"max_active_jobs": -1}`, http.StatusUnprocessableEntity},
		{"unknown account", "/v1/admin/accounts/acct_none/limits", `{"burst": 1}`, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.admin().do(t, http.MethodPut, tc.path, strings.NewReader(tc.body), "application/json").wantProblem(t, tc.want)
		})
	}
	// Admin operations need the admin token, not an account key: a valid
	// key of the wrong kind is 403.
	c.do(t, http.MethodPut, "/v1/admin/accounts/"+fastID+"/limits", strings.NewReader(`{"burst": 1}`), "application/json").
		wantProblem(t, http.StatusForbidden)
}

// TestE2EMaxActiveJobs: an account with --max-active-jobs unfinished jobs is
// refused the next with 429 and a clear message, nothing charged, nothing
// left; once one ends a new one is accepted; the account's own limit wins.
func TestE2EMaxActiveJobs(t *testing.T) {
	t.Parallel()
	file := corpusFile(t, smallPDF)
	// Answers take ten minutes: the jobs stay unfinished until cancelled.
	fake := startFakeGemini(t, "--latency-base", "10m", "--latency-per-page", "0s", "--latency-jitter", "0s")
	n := startNodeEnv(t, fake.env(), "--max-active-jobs", "2", "--concurrency", "1")
	c, id := n.newAccount(t, "busy", 1000)
	fields := geminiFields(1)

	j1, j2 := c.submit(t, file, fields), c.submit(t, file, fields)
	before := c.credits(t)
	refused := func(limit int) {
		t.Helper()
		r := c.upload(t, file, fields)
		p := r.wantProblem(t, http.StatusTooManyRequests)
		wantRetryAfter(t, r)
		if want := fmt.Sprintf("limit is %d", limit); !strings.Contains(p.Detail, "unfinished jobs") || !strings.Contains(p.Detail, want) {
			t.Errorf("429 detail %q does not say the account has too many unfinished jobs (%s)", p.Detail, want)
		}
		t.Logf("429 %q", p.Detail)
	}
	refused(2)
	after := c.credits(t)
	if after.standing() != before.standing() || len(after.Entries) != len(before.Entries) {
		t.Errorf("a refused job moved credits: %+v -> %+v", before.standing(), after.standing())
	}
	checkNothingLeft(t, n, "a refused job")
	if blobs := n.listDir(t, "blobs"); len(blobs) != 2 {
		t.Errorf("blobs %v, want the two running jobs' PDFs", blobs)
	}
	// The bound is per account.
	other, _ := n.newAccount(t, "other", 100)
	o := other.submit(t, file, fields)

	// One ends (cancelled): a new one is accepted.
	c.postJSON(t, "/v1/jobs/"+j1.ID+"/cancel", nil)
	if final, _ := c.waitTerminal(t, j1, jobTimeout); final.Status != "cancelled" {
		t.Fatalf("cancelled job ended %s", final.Status)
	}
	j3 := c.submit(t, file, fields)
	refused(2)

	// The account's own limit wins over the node's.
	n.admin().do(t, http.MethodPut, "/v1/admin/accounts/"+id+"/limits", strings.NewReader(`{"max_active_jobs": 3}`), "application/json").
		decode(t, http.StatusOK, &struct{}{})
	j4 := c.submit(t, file, fields)
	refused(3)

	for _, j := range []jobView{j2, j3, j4} {
		c.postJSON(t, "/v1/jobs/"+j.ID+"/cancel", nil)
	}
	other.postJSON(t, "/v1/jobs/"+o.ID+"/cancel", nil)
	for _, j := range []jobView{j2, j3, j4} {
		c.waitTerminal(t, j, jobTimeout)
	}
	if cr := c.credits(t); cr.Reserved != 0 || cr.Charged != 0 {
		t.Errorf("after cancelling every job before any page was done: %+v, want nothing reserved or charged", cr.standing())
	}
}

// rawRequest opens a connection to the node and sends a request head.
func rawRequest(tb testing.TB, n *testNode, head string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", n.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.WriteString(conn, head); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// uploadHead is the head of a multipart POST /v1/jobs: with a Content-Length
// (length >= 0) or chunked (length < 0).
func uploadHead(token string, length int64) string {
	h := "POST /v1/jobs HTTP/1.1\r\nHost: quire\r\nAuthorization: Bearer " + token + "\r\n" +
		"Content-Type: multipart/form-data; boundary=" + rawBoundary + "\r\n"
	if length >= 0 {
		return h + "Content-Length: " + strconv.FormatInt(length, 10) + "\r\n\r\n"
	}
	return h + "Transfer-Encoding: chunked\r\n\r\n"
}

const rawBoundary = "quire-e2e-boundary"

// filePartHead starts the multipart body's file part.
const filePartHead = "--" + rawBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n" +
	"Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"

// writeChunk writes p as one chunk of a chunked body.
func writeChunk(w io.Writer, p []byte) error {
	if _, err := fmt.Fprintf(w, "%x\r\n", len(p)); err != nil {
		return err
	}
	if _, err := w.Write(p); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\r\n")
	return err
}

// readProblem reads an answer from a raw connection and checks it is a
// problem of status want.
func readProblem(tb testing.TB, conn net.Conn, want int) *response {
	tb.Helper()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read answer: %v", err)
	}
	r := &response{Method: http.MethodPost, Path: "/v1/jobs", Status: res.StatusCode, Header: res.Header, Body: b}
	r.wantProblem(tb, want)
	return r
}

// TestE2EUploadTooLargeEarly: an upload over --max-upload-mb is answered 413
// while the client is still sending: with a Content-Length, before a byte of
// the body; chunked, after about the limit, far from the whole body.
func TestE2EUploadTooLargeEarly(t *testing.T) {
	t.Parallel()
	n := startNode(t, "--max-upload-mb", "1")
	c, _ := n.newAccount(t, "early", 100)
	const total = 256 << 20 // what the client means to send

	t.Run("Content-Length", func(t *testing.T) {
		conn := rawRequest(t, n, uploadHead(c.token, total)) // and not a byte of the body
		readProblem(t, conn, http.StatusRequestEntityTooLarge)
	})

	t.Run("chunked", func(t *testing.T) {
		conn := rawRequest(t, n, uploadHead(c.token, -1))
		var sent atomic.Int64
		done := make(chan error, 1)
		go func() {
			if err := writeChunk(conn, []byte(filePartHead)); err != nil {
				done <- err
				return
			}
			block := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
			for sent.Load() < total {
				if err := writeChunk(conn, block); err != nil {
					done <- err
					return
				}
				sent.Add(int64(len(block)))
			}
			done <- nil
		}()
		r := readProblem(t, conn, http.StatusRequestEntityTooLarge)
		atAnswer := sent.Load()
		conn.Close()
		err := <-done
		t.Logf("413 %q after %.1f MiB of a %d MiB body were written", r.Body, float64(atAnswer)/(1<<20), total>>20)
		if atAnswer >= total || err == nil {
			t.Errorf("the whole body (%d bytes) was sent before the 413 (writer: %v)", atAnswer, err)
		}
	})
	checkNothingLeft(t, n, "uploads over the limit")
	if r := c.get(t, "/v1/credits"); r.Status != http.StatusOK {
		t.Errorf("node after large uploads: %s", r)
	}
}

// TestE2EConcurrentUploads: with --max-concurrent-uploads uploads being
// received, one more is answered 503 with Retry-After before its body is
// read; when they end, nothing is left behind and uploads are taken again.
func TestE2EConcurrentUploads(t *testing.T) {
	t.Parallel()
	file := corpusFile(t, smallPDF)
	n := startNode(t, "--max-concurrent-uploads", "2")
	c, _ := n.newAccount(t, "uploads", 100)

	// Two uploads that have started and stall.
	var stalled []net.Conn
	for range 2 {
		conn := rawRequest(t, n, uploadHead(c.token, -1))
		if err := writeChunk(conn, append([]byte(filePartHead), bytes.Repeat([]byte{'x'}, 64<<10)...)); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, conn)
	}
	pollUntil(t, 30*time.Second, "both stalled uploads are being received", func() bool { return len(n.tmpFiles(t)) == 2 })
	before := c.credits(t).standing()

	// A third: 503 before its body is read (none is sent).
	conn := rawRequest(t, n, uploadHead(c.token, 10<<20))
	r := readProblem(t, conn, http.StatusServiceUnavailable)
	if got := r.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	// A burst of whole uploads: each refused alike.
	body, ct := multipartBody(t, file, nil)
	var wg sync.WaitGroup
	answers := make([]*response, 6)
	errs := make([]error, len(answers))
	for i := range answers {
		wg.Go(func() { answers[i], errs[i] = c.tryHeaders(http.MethodPost, "/v1/jobs", body.Bytes(), ct, nil) })
	}
	wg.Wait()
	for i, r := range answers {
		if errs[i] != nil {
			t.Fatalf("upload %d of the burst: %v", i, errs[i])
		}
		if p := r.wantProblem(t, http.StatusServiceUnavailable); p.Code != "unavailable" {
			t.Errorf("503 code %q, want unavailable", p.Code)
		}
		wantRetryAfter(t, r)
	}
	if after := c.credits(t).standing(); after != before {
		t.Errorf("refused uploads moved credits: %+v -> %+v", before, after)
	}
	if got := len(n.tmpFiles(t)); got != 2 {
		t.Errorf("%d files in tmp with two uploads in progress, want 2", got)
	}

	// The stalled clients go away: their files are removed, slots freed.
	for _, conn := range stalled {
		conn.Close()
	}
	pollUntil(t, 30*time.Second, "the abandoned uploads are removed from tmp", func() bool { return len(n.tmpFiles(t)) == 0 })
	j := c.submit(t, file, nil)
	if final, _ := c.waitTerminal(t, j, jobTimeout); final.Status != "completed" {
		t.Errorf("an upload after the burst ended %s", final.Status)
	}
}

// TestE2EMaxPages: a PDF with more pages than --max-pages is 413 before
// anything is charged, and leaves nothing behind; one at the limit is fine.
func TestE2EMaxPages(t *testing.T) {
	t.Parallel()
	n := startNode(t, "--max-pages", "3")
	c, _ := n.newAccount(t, "pages", 100)
	before := c.credits(t).standing()
	p := c.upload(t, corpusFile(t, fourPagePDF), nil).wantProblem(t, http.StatusRequestEntityTooLarge)
	if p.Code != "too_many_pages" {
		t.Errorf("413 code %q, want too_many_pages", p.Code)
	}
	if !strings.Contains(p.Detail, "4 pages") || !strings.Contains(p.Detail, "at most 3") {
		t.Errorf("413 detail %q does not say 4 pages and the limit of 3", p.Detail)
	}
	if after := c.credits(t).standing(); after != before {
		t.Errorf("a PDF over the page limit moved credits: %+v -> %+v", before, after)
	}
	checkNothingLeft(t, n, "a PDF over the page limit")
	if blobs := n.listDir(t, "blobs"); len(blobs) != 0 {
		t.Errorf("blobs %v after a refused PDF", blobs)
	}
	j := c.submit(t, corpusFile(t, smallPDF), nil)
	if final, _ := c.waitTerminal(t, j, jobTimeout); final.Status != "completed" || final.Pages != 3 {
		t.Errorf("a 3-page PDF at the limit: %s, %d pages", final.Status, final.Pages)
	}
}
