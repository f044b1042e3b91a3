package load

// The REST client. The JSON shapes below are the REST contract of
// docs/DESIGN.md written down again, not the server's types: bench is a
// client like any other, and a change of the contract shows here.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// jobView is GET /v1/jobs/{id}.
type jobView struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	Pages      int     `json:"pages"`
	ChunkPages int     `json:"chunk_pages"`
	Extractor  string  `json:"extractor"`
	Progress   float64 `json:"progress"`
	Retries    int     `json:"retries"`
	Error      string  `json:"error"`
	Chunks     struct {
		Total     int `json:"total"`
		Done      int `json:"done"`
		Failed    int `json:"failed"`
		Running   int `json:"running"`
		Queued    int `json:"queued"`
		Cancelled int `json:"cancelled"`
	} `json:"chunks"`
	Credits JobCredits `json:"credits"`
}

// terminal reports whether a job status is one a job ends in.
func terminal(status string) bool {
	switch status {
	case "completed", "partially_completed", "failed", "cancelled":
		return true
	}
	return false
}

// JobCredits are a job's credit movements.
type JobCredits struct {
	Reserved int64 `json:"reserved"`
	Charged  int64 `json:"charged"`
	Refunded int64 `json:"refunded"`
}

// chunkView is one chunk of GET /v1/jobs/{id}/result (its output left out).
type chunkView struct {
	Index      int    `json:"index"`
	FirstPage  int    `json:"first_page"`
	LastPage   int    `json:"last_page"`
	Status     string `json:"status"`
	Node       string `json:"node"`
	Attempts   int    `json:"attempts"`
	DurationMs int64  `json:"duration_ms"`
}

func (c chunkView) pages() int { return c.LastPage - c.FirstPage + 1 }

// creditsView is GET /v1/credits.
type creditsView struct {
	Balance   int64 `json:"balance"`
	Reserved  int64 `json:"reserved"`
	Available int64 `json:"available"`
	Granted   int64 `json:"granted"`
	Charged   int64 `json:"charged"`
}

// memberView is one member of GET /v1/admin/cluster.
type memberView struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	HTTPAddr string `json:"http_addr"`
	Load     int    `json:"load"`
	Queued   int    `json:"queued"`
	Capacity int    `json:"capacity"`
	Draining bool   `json:"draining"`
}

// api calls one node with one bearer token.
type api struct {
	url   string
	token string
	hc    *http.Client
}

// newHTTPClient is the HTTP client of a run: enough idle connections for
// every client of the run, and no overall timeout (requests carry contexts).
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: max(conns, 16),
		IdleConnTimeout:     90 * time.Second,
	}}
}

// statusError is an answer with a status the caller did not want.
type statusError struct {
	Method, Path string
	Status       int
	RetryAfter   time.Duration
	Body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// Request deadlines: an upload may stream a large PDF; anything else that
// takes a minute is a node that does not answer (the caller retries).
const (
	uploadTimeout  = 10 * time.Minute
	requestTimeout = time.Minute
	// transportTries is how many times a request that got no answer at all
	// (connection refused or reset) is sent.
	transportTries = 3
)

// throttles counts the answers that told a client to come back later:
// 429 (rate limit, too many active jobs) and 503 (uploads gate, ledger
// unreachable), both with Retry-After. A context carries the counter of the
// job its requests are for (withThrottles).
type throttles struct {
	api429, api503 atomic.Int64
}

type throttlesKey struct{}

func withThrottles(ctx context.Context, t *throttles) context.Context {
	return context.WithValue(ctx, throttlesKey{}, t)
}

// retryAfter says whether err is worth sending the request again, and
// after how long: a 429 or 503 after its Retry-After (at least 100 ms), a
// request that got no answer after 200 ms × attempt, up to transportTries.
// It counts the 429s and 503s in ctx's throttles.
func retryAfter(ctx context.Context, err error, attempt int) (time.Duration, bool) {
	if err == nil || ctx.Err() != nil {
		return 0, false
	}
	var se *statusError
	if errors.As(err, &se) {
		if se.Status != http.StatusTooManyRequests && se.Status != http.StatusServiceUnavailable {
			return 0, false
		}
		if t, ok := ctx.Value(throttlesKey{}).(*throttles); ok {
			if se.Status == http.StatusTooManyRequests {
				t.api429.Add(1)
			} else {
				t.api503.Add(1)
			}
		}
		return max(se.RetryAfter, 100*time.Millisecond), true
	}
	return 200 * time.Millisecond * time.Duration(attempt), attempt < transportTries
}

// do sends a request (body may be nil) and decodes a `want` answer into
// out (unless nil); it sends it again as retryAfter says.
func (a *api) do(ctx context.Context, method, path string, body []byte, contentType string, want int, out any) error {
	for attempt := 1; ; attempt++ {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		err := a.once(ctx, method, path, r, contentType, want, out)
		wait, again := retryAfter(ctx, err, attempt)
		if !again {
			return err
		}
		sleep(ctx, wait)
	}
}

// once sends one request.
func (a *api) once(ctx context.Context, method, path string, body io.Reader, contentType string, want int, out any) error {
	timeout := requestTimeout
	if method == http.MethodPost && path == "/v1/jobs" {
		timeout = uploadTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, body)
	if err != nil {
		return err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return a.answer(req, want, out)
}

// answer sends req and decodes a `want` answer into out (unless nil).
func (a *api) answer(req *http.Request, want int, out any) error {
	method, path := req.Method, req.URL.Path
	res, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode != want {
		e := &statusError{Method: method, Path: path, Status: res.StatusCode, Body: string(bytes.TrimSpace(b))}
		if len(e.Body) > 500 {
			e.Body = e.Body[:500] + "..."
		}
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (a *api) postJSON(ctx context.Context, path string, in any, want int, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return a.do(ctx, http.MethodPost, path, b, "application/json", want, out)
}

// createAccount creates an account (admin) and returns its API key.
func (a *api) createAccount(ctx context.Context, name string, credits int64) (string, error) {
	var acct struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	if err := a.postJSON(ctx, "/v1/admin/accounts", map[string]any{"name": name, "credits": credits}, http.StatusCreated, &acct); err != nil {
		return "", fmt.Errorf("create account %q: %w", name, err)
	}
	if acct.APIKey == "" {
		return "", fmt.Errorf("create account %q: no api_key in the answer", name)
	}
	return acct.APIKey, nil
}

// members is GET /v1/admin/cluster.
func (a *api) members(ctx context.Context) ([]memberView, error) {
	var out struct {
		Members []memberView `json:"members"`
	}
	err := a.do(ctx, http.MethodGet, "/v1/admin/cluster", nil, "", http.StatusOK, &out)
	return out.Members, err
}

func (a *api) credits(ctx context.Context) (creditsView, error) {
	var c creditsView
	err := a.do(ctx, http.MethodGet, "/v1/credits?recent=1", nil, "", http.StatusOK, &c)
	return c, err
}

func (a *api) job(ctx context.Context, id string) (jobView, error) {
	var j jobView
	err := a.do(ctx, http.MethodGet, "/v1/jobs/"+id, nil, "", http.StatusOK, &j)
	return j, err
}

func (a *api) result(ctx context.Context, id string) ([]chunkView, error) {
	var out struct {
		Chunks []chunkView `json:"chunks"`
	}
	err := a.do(ctx, http.MethodGet, "/v1/jobs/"+id+"/result", nil, "", http.StatusOK, &out)
	return out.Chunks, err
}

func (a *api) cancel(ctx context.Context, id string) (jobView, error) {
	var j jobView
	err := a.do(ctx, http.MethodPost, "/v1/jobs/"+id+"/cancel", nil, "", http.StatusOK, &j)
	return j, err
}

// submit uploads the PDF at path as a job with fields, streaming it from
// disk, and returns the 202's job. key is its Idempotency-Key, so that a
// request sent again after no answer cannot make a second job. It is sent
// again as retryAfter says.
func (a *api) submit(ctx context.Context, path, key string, fields map[string]string) (jobView, time.Duration, error) {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		j, err := a.submitOnce(ctx, path, key, fields)
		if err == nil {
			return j, time.Since(start), nil
		}
		wait, again := retryAfter(ctx, err, attempt)
		if !again {
			return j, 0, err
		}
		sleep(ctx, wait)
	}
}

func (a *api) submitOnce(ctx context.Context, path, key string, fields map[string]string) (jobView, error) {
	fh, err := os.Open(path)
	if err != nil {
		return jobView{}, err
	}
	defer fh.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for _, k := range []string{"extractor", "chunk_pages", "prompt", "schema"} {
				if v := fields[k]; v != "" {
					if err := mw.WriteField(k, v); err != nil {
						return err
					}
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(path))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, fh); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+"/v1/jobs", pr)
	if err != nil {
		return jobView{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Idempotency-Key", key)
	var j jobView
	err = a.answer(req, http.StatusAccepted, &j)
	pr.CloseWithError(errors.New("request done")) // ends the writer if the answer came first
	if err == nil && j.ID == "" {
		err = errors.New("POST /v1/jobs: 202 without a job id")
	}
	return j, err
}
