package gemini

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genai"

	"github.com/quirehq/quire/actors/extract"
)

// Errors of the gemini extractor. Each failure of a chunk wraps one of
// them (errors.Is) and says, in its own message, what happened in words a
// user understands; extract.IsPermanent and extract.RetryAfter say whether
// and when to retry.
var (
	// ErrRateLimited: a per-minute quota answered 429; retried after the
	// delay Gemini asked for.
	ErrRateLimited = errors.New("gemini: rate limited")
	// ErrDailyQuota: the project's daily quota is used up; not retried.
	ErrDailyQuota = errors.New("gemini: daily quota used up")
	// ErrUnavailable: a server error (5xx), a connection that failed or a
	// call that timed out; retried.
	ErrUnavailable = errors.New("gemini: unavailable")
	// ErrRefused: Gemini refused the request (400, 404, 413 ...); not
	// retried.
	ErrRefused = errors.New("gemini: request refused")
	// ErrDenied: the API key was refused (401, 403, API_KEY_INVALID); not
	// retried.
	ErrDenied = errors.New("gemini: access denied")
	// ErrSafety: Gemini blocked the pages or the answer for safety; not
	// retried.
	ErrSafety = errors.New("gemini: blocked for safety")
	// ErrRecitation: Gemini stopped because the answer recited copyrighted
	// text; not retried.
	ErrRecitation = errors.New("gemini: stopped for recitation")
	// ErrNoAnswer: a 200 without a candidate; retried.
	ErrNoAnswer = errors.New("gemini: no answer")
	// ErrBadAnswer: the answer was not JSON, or not JSON that matches the
	// schema, even after a repair call; not retried.
	ErrBadAnswer = errors.New("gemini: unusable answer")
	// ErrBadPages: the chunk's pages could not be cut out of the PDF; not
	// retried.
	ErrBadPages = errors.New("gemini: cannot cut the pages")

	// ErrBadPrompt, ErrBadSchema and ErrBadModel are ValidateRequest's
	// refusals of a job's options.
	ErrBadPrompt = errors.New("gemini: bad prompt")
	ErrBadSchema = errors.New("gemini: bad schema")
	ErrBadModel  = errors.New("gemini: bad model")
)

// failure is an error of kind (a sentinel above) whose message is written
// for users; cause, if any, is what it was made from.
type failure struct {
	kind  error
	msg   string
	cause error
}

func (f *failure) Error() string { return f.msg }

func (f *failure) Unwrap() []error {
	if f.cause == nil {
		return []error{f.kind}
	}
	return []error{f.kind, f.cause}
}

func fail(kind error, cause error, format string, args ...any) error {
	return &failure{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// The google.rpc error details Gemini sends with its errors.
const (
	typeRetryInfo    = "type.googleapis.com/google.rpc.RetryInfo"
	typeQuotaFailure = "type.googleapis.com/google.rpc.QuotaFailure"
	typeErrorInfo    = "type.googleapis.com/google.rpc.ErrorInfo"
)

// apiDetails is what the details of a genai.APIError say.
type apiDetails struct {
	retryDelay time.Duration // RetryInfo
	quotaIDs   []string      // QuotaFailure violations
	reasons    []string      // ErrorInfo
}

func parseDetails(details []map[string]any) apiDetails {
	var d apiDetails
	for _, m := range details {
		switch m["@type"] {
		case typeRetryInfo:
			if s, ok := m["retryDelay"].(string); ok {
				d.retryDelay = parseRetryDelay(s)
			}
		case typeQuotaFailure:
			vs, _ := m["violations"].([]any)
			for _, v := range vs {
				if vm, ok := v.(map[string]any); ok {
					if id, ok := vm["quotaId"].(string); ok && id != "" {
						d.quotaIDs = append(d.quotaIDs, id)
					}
				}
			}
		case typeErrorInfo:
			if r, ok := m["reason"].(string); ok && r != "" {
				d.reasons = append(d.reasons, r)
			}
		}
	}
	return d
}

// parseRetryDelay reads a google.protobuf.Duration in its JSON form
// ("37s", "1.5s", "0.250s"); 0 for anything else.
func parseRetryDelay(s string) time.Duration {
	s = strings.TrimSpace(s)
	if !strings.HasSuffix(s, "s") || strings.HasPrefix(s, "-") {
		return 0
	}
	secs, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil || !(secs >= 0 && secs <= (100*24*time.Hour).Seconds()) { // NaN too
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// parseRetryAfter reads an HTTP Retry-After header (seconds or a date);
// 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 || secs > int64((100*24*time.Hour).Seconds()) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// defaultRetryDelay is the wait after a 429 that says nothing of one.
const defaultRetryDelay = time.Second

// verdict is what a failed call means: the error Extract returns and, for
// a per-minute 429, the retry delay Gemini asked for (for the Limiter).
type verdict struct {
	err        error
	retryAfter time.Duration
}

// classifyAPIError maps Gemini's error answers (the HTTP status and
// google.rpc details of aerr, and the Retry-After header if the answer had
// one) to the chunk's fate; model is the model called.
func classifyAPIError(aerr genai.APIError, retryAfterHeader time.Duration, model string) verdict {
	d := parseDetails(aerr.Details)
	msg := strings.TrimSpace(aerr.Message)
	status := strings.TrimSpace(aerr.Status)
	if status == "" {
		status = http.StatusText(aerr.Code)
	}
	switch {
	case aerr.Code == http.StatusTooManyRequests:
		for _, id := range d.quotaIDs {
			if strings.Contains(id, "PerDay") {
				return verdict{err: extract.Permanent(fail(ErrDailyQuota, aerr,
					"Gemini's daily quota for this project is used up; the chunk was not processed and its pages are refunded. "+
						"Try again after the quota resets or raise it."))}
			}
		}
		delay := d.retryDelay
		if delay <= 0 {
			delay = retryAfterHeader
		}
		if delay <= 0 {
			delay = defaultRetryDelay
		}
		what := msg
		if len(d.quotaIDs) > 0 {
			what = "quota " + strings.Join(d.quotaIDs, ", ") + " exceeded"
		}
		return verdict{
			err:        fail(ErrRateLimited, aerr, "Gemini rate limit (429): %s; Gemini asked to retry in %s", what, delay),
			retryAfter: delay,
		}
	case aerr.Code == http.StatusUnauthorized || aerr.Code == http.StatusForbidden ||
		(aerr.Code == http.StatusBadRequest && containsFold(d.reasons, "API_KEY_INVALID")):
		return verdict{err: extract.Permanent(fail(ErrDenied, aerr,
			"Gemini denied access (%d): check the API key and its permissions", aerr.Code))}
	case aerr.Code == http.StatusNotFound:
		return verdict{err: extract.Permanent(fail(ErrRefused, aerr,
			"Gemini does not offer the model %q (404): %s", model, msg))}
	case aerr.Code == http.StatusRequestEntityTooLarge:
		return verdict{err: extract.Permanent(fail(ErrRefused, aerr,
			"Gemini refused the request as too large (413): use fewer pages per chunk"))}
	case aerr.Code == http.StatusRequestTimeout || aerr.Code == 499:
		return verdict{err: fail(ErrUnavailable, aerr, "Gemini gave up on the request (%d %s): %s", aerr.Code, status, msg)}
	case aerr.Code >= 500:
		return verdict{err: fail(ErrUnavailable, aerr, "Gemini is unavailable (%d %s): %s", aerr.Code, status, msg)}
	case aerr.Code >= 400:
		return verdict{err: extract.Permanent(fail(ErrRefused, aerr,
			"Gemini refused the request as invalid: %s", msg))}
	}
	// Not an error status: an answer the SDK could not read.
	return verdict{err: fail(ErrUnavailable, aerr, "Gemini answered something unexpected (%d %s): %s", aerr.Code, status, msg)}
}

// classifyCallError maps the failure of a call that ended without an
// answer: ctx (the chunk's) ended, the call's own timeout passed, the
// connection failed, or an error status came back. p, if not nil, is what
// the transport saw of the call's last HTTP answer.
func classifyCallError(ctx context.Context, err error, timeout time.Duration, p *probe, model string) verdict {
	if ctx.Err() != nil {
		return verdict{err: ctx.Err()}
	}
	var status int
	var retryAfter time.Duration
	var seen *genai.APIError
	if p != nil {
		status, retryAfter, seen = p.last()
	}
	var aerr genai.APIError
	if errors.As(err, &aerr) {
		return classifyAPIError(aerr, retryAfter, model)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return verdict{err: fail(ErrUnavailable, err, "Gemini did not answer within %s", timeout)}
	}
	if status >= 400 {
		// An error answer the SDK did not keep as an APIError (the Files
		// API's): classify what the transport saw of it.
		if seen != nil && seen.Code == status {
			return classifyAPIError(*seen, retryAfter, model)
		}
		return classifyAPIError(genai.APIError{Code: status, Message: shortError(err)}, retryAfter, model)
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return verdict{err: fail(ErrUnavailable, err, "the connection to Gemini timed out: %s", shortError(err))}
	}
	return verdict{err: fail(ErrUnavailable, err, "the connection to Gemini failed: %s", shortError(err))}
}

// shortError is err's message without the SDK's and net/http's wrapping
// (the URL, "doRequest: error sending request").
func shortError(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err.Error()
	}
	return err.Error()
}

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
