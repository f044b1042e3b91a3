package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"google.golang.org/genai"
)

// The SDK keeps the body of an error answer (genai.APIError) but not its
// headers, and the Files API's upload turns its errors into plain strings.
// A probe, put in a call's context, records what the transport saw of the
// call's last HTTP answer: its status, its Retry-After header and, for an
// error, Google's error body.

type probeKey struct{}

type probe struct {
	mu         sync.Mutex
	status     int
	retryAfter time.Duration
	apiErr     *genai.APIError
}

// maxErrorBody bounds the error body a probe reads.
const maxErrorBody = 64 << 10

func withProbe(ctx context.Context) (context.Context, *probe) {
	p := &probe{}
	return context.WithValue(ctx, probeKey{}, p), p
}

// last returns what the probe saw of the last answer: its status, its
// Retry-After, and its error body if it was one of Google's.
func (p *probe) last() (status int, retryAfter time.Duration, apiErr *genai.APIError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.retryAfter, p.apiErr
}

// probeTransport records each answer in the probe of its request's
// context, if there is one.
type probeTransport struct {
	base http.RoundTripper
	now  func() time.Time
}

func (t probeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	p, ok := req.Context().Value(probeKey{}).(*probe)
	if !ok || resp == nil {
		return resp, err
	}
	var apiErr *genai.APIError
	if resp.StatusCode >= 400 && resp.Body != nil {
		// Read the start of the body, and hand the SDK all of it.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		var body struct {
			Error *genai.APIError `json:"error"`
		}
		if json.Unmarshal(head, &body) == nil && body.Error != nil {
			apiErr = body.Error
		}
	}
	p.mu.Lock()
	p.status = resp.StatusCode
	p.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), t.now())
	p.apiErr = apiErr
	p.mu.Unlock()
	return resp, err
}

type readCloser struct {
	io.Reader
	io.Closer
}
