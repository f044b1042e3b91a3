package gemini

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/quirehq/quire/actors/extract"
)

func retryInfo(delay string) map[string]any {
	return map[string]any{"@type": typeRetryInfo, "retryDelay": delay}
}

func quotaFailure(ids ...string) map[string]any {
	var vs []any
	for _, id := range ids {
		vs = append(vs, map[string]any{"quotaMetric": "m", "quotaId": id})
	}
	return map[string]any{"@type": typeQuotaFailure, "violations": vs}
}

// The error mapping, case by case, on errors as Gemini sends them.
func TestClassifyAPIError(t *testing.T) {
	const (
		permanent = "permanent"
		limited   = "rate limited"
		transient = "transient"
	)
	cases := []struct {
		name       string
		aerr       genai.APIError
		header     time.Duration // Retry-After
		fate       string
		kind       error
		retryAfter time.Duration
		msg        string
	}{
		{"per-minute 429", genai.APIError{Code: 429, Status: "RESOURCE_EXHAUSTED", Message: "You exceeded your current quota",
			Details: []map[string]any{quotaFailure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"), retryInfo("37s")}},
			0, limited, ErrRateLimited, 37 * time.Second,
			"Gemini rate limit (429): quota GenerateRequestsPerMinutePerProjectPerModel-FreeTier exceeded; Gemini asked to retry in 37s"},
		{"fractional retry delay", genai.APIError{Code: 429, Status: "RESOURCE_EXHAUSTED", Message: "m",
			Details: []map[string]any{retryInfo("1.500s")}}, 0, limited, ErrRateLimited, 1500 * time.Millisecond, "retry in 1.5s"},
		{"RetryInfo before Retry-After", genai.APIError{Code: 429, Message: "m",
			Details: []map[string]any{retryInfo("2s")}}, 9 * time.Second, limited, ErrRateLimited, 2 * time.Second, ""},
		{"Retry-After without RetryInfo", genai.APIError{Code: 429, Status: "RESOURCE_EXHAUSTED", Message: "Resource has been exhausted (e.g. check quota)."},
			3 * time.Second, limited, ErrRateLimited, 3 * time.Second, "Gemini rate limit (429): Resource has been exhausted (e.g. check quota)."},
		{"429 saying nothing of when", genai.APIError{Code: 429, Message: "slow down"}, 0, limited, ErrRateLimited, time.Second, ""},
		{"unreadable retry delay", genai.APIError{Code: 429, Message: "m", Details: []map[string]any{retryInfo("soon")}}, 0, limited, ErrRateLimited, time.Second, ""},
		{"daily quota", genai.APIError{Code: 429, Status: "RESOURCE_EXHAUSTED", Message: "You exceeded your current quota",
			Details: []map[string]any{quotaFailure("GenerateRequestsPerDayPerProjectPerModel-FreeTier")}}, 0, permanent, ErrDailyQuota, 0,
			"Gemini's daily quota for this project is used up; the chunk was not processed and its pages are refunded. Try again after the quota resets or raise it."},
		{"daily and per-minute quota", genai.APIError{Code: 429, Message: "m",
			Details: []map[string]any{quotaFailure("GenerateRequestsPerMinutePerProjectPerModel", "GenerateContentInputTokensPerModelPerDay"), retryInfo("5s")}},
			0, permanent, ErrDailyQuota, 0, "daily quota"},
		{"400", genai.APIError{Code: 400, Status: "INVALID_ARGUMENT", Message: "The document has 1200 pages, which exceeds the limit of 1000 pages."},
			0, permanent, ErrRefused, 0, "Gemini refused the request as invalid: The document has 1200 pages, which exceeds the limit of 1000 pages."},
		{"400 bad key", genai.APIError{Code: 400, Status: "INVALID_ARGUMENT", Message: "API key not valid. Please pass a valid API key.",
			Details: []map[string]any{{"@type": typeErrorInfo, "reason": "API_KEY_INVALID"}}}, 0, permanent, ErrDenied, 0,
			"Gemini denied access (400): check the API key and its permissions"},
		{"401", genai.APIError{Code: 401, Status: "UNAUTHENTICATED", Message: "m"}, 0, permanent, ErrDenied, 0, "Gemini denied access (401)"},
		{"403", genai.APIError{Code: 403, Status: "PERMISSION_DENIED", Message: "The caller does not have permission"}, 0, permanent, ErrDenied, 0,
			"Gemini denied access (403): check the API key and its permissions"},
		{"404 model", genai.APIError{Code: 404, Status: "NOT_FOUND", Message: "models/gemini-9 is not found for API version v1beta"}, 0, permanent, ErrRefused, 0,
			`Gemini does not offer the model "gemini-2.5-flash" (404)`},
		{"413", genai.APIError{Code: 413, Message: "too large"}, 0, permanent, ErrRefused, 0, "use fewer pages per chunk"},
		{"499", genai.APIError{Code: 499, Status: "CANCELLED", Message: "The operation was cancelled."}, 0, transient, ErrUnavailable, 0, "Gemini gave up on the request (499 CANCELLED)"},
		{"500", genai.APIError{Code: 500, Status: "INTERNAL", Message: "An internal error has occurred."}, 0, transient, ErrUnavailable, 0,
			"Gemini is unavailable (500 INTERNAL): An internal error has occurred."},
		{"502 without a body", genai.APIError{Code: 502}, 0, transient, ErrUnavailable, 0, "Gemini is unavailable (502 Bad Gateway)"},
		{"503", genai.APIError{Code: 503, Status: "UNAVAILABLE", Message: "The model is overloaded. Please try again later."}, 0, transient, ErrUnavailable, 0,
			"Gemini is unavailable (503 UNAVAILABLE)"},
		{"504", genai.APIError{Code: 504, Status: "DEADLINE_EXCEEDED", Message: "Deadline expired before operation could complete."}, 0, transient, ErrUnavailable, 0,
			"Gemini is unavailable (504 DEADLINE_EXCEEDED)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := classifyAPIError(tc.aerr, tc.header, DefaultModel)
			err := v.err
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			var aerr genai.APIError
			if !errors.As(err, &aerr) || aerr.Code != tc.aerr.Code {
				t.Errorf("error %q does not wrap the APIError", err)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			var fate string
			switch {
			case extract.IsPermanent(err):
				fate = permanent
			case v.retryAfter > 0:
				fate = limited
			default:
				fate = transient
			}
			if fate != tc.fate {
				t.Errorf("error %q is %s, want %s", err, fate, tc.fate)
			}
			if v.retryAfter != tc.retryAfter {
				t.Errorf("retry after %s, want %s", v.retryAfter, tc.retryAfter)
			}
		})
	}
}

func TestClassifyCallError(t *testing.T) {
	reset := fmt.Errorf("doRequest: error sending request: %w", &netOpError{syscall.ECONNRESET})
	cases := []struct {
		name string
		err  error
		msg  string
	}{
		{"connection reset", reset, "the connection to Gemini failed: "},
		{"unexpected EOF", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), "the connection to Gemini failed: "},
		{"call timeout", fmt.Errorf("doRequest: %w", context.DeadlineExceeded), "Gemini did not answer within 30s"},
		{"net timeout", &netOpError{timeoutError{}}, "the connection to Gemini timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := classifyCallError(t.Context(), tc.err, 30*time.Second, nil, DefaultModel)
			if !errors.Is(v.err, ErrUnavailable) || extract.IsPermanent(v.err) || v.retryAfter != 0 {
				t.Errorf("classifyCallError = %v (retry after %s), want transient ErrUnavailable", v.err, v.retryAfter)
			}
			if !strings.Contains(v.err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", v.err, tc.msg)
			}
		})
	}

	// The chunk's own end is never classified: it is the context's error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, err := range []error{reset, genai.APIError{Code: 400}, context.Canceled} {
		if v := classifyCallError(ctx, err, 0, nil, DefaultModel); v.err != context.Canceled {
			t.Errorf("classifyCallError(cancelled, %v) = %v, want context.Canceled", err, v.err)
		}
	}

	// An error the SDK flattened to a string is classified by what the
	// transport saw.
	p := &probe{status: 403, apiErr: &genai.APIError{Code: 403, Status: "PERMISSION_DENIED", Message: "denied"}}
	v := classifyCallError(t.Context(), errors.New("Failed to create file. Ran into an error: Error 403"), 0, p, DefaultModel)
	if !errors.Is(v.err, ErrDenied) || !extract.IsPermanent(v.err) {
		t.Errorf("flattened 403 = %v, want a permanent ErrDenied", v.err)
	}
	p = &probe{status: 429, retryAfter: 4 * time.Second}
	v = classifyCallError(t.Context(), errors.New("Failed to create file. Ran into an error: Error 429"), 0, p, DefaultModel)
	if !errors.Is(v.err, ErrRateLimited) || v.retryAfter != 4*time.Second {
		t.Errorf("flattened 429 = %v (after %s), want ErrRateLimited after 4s", v.err, v.retryAfter)
	}
}

type netOpError struct{ err error }

func (e *netOpError) Error() string   { return "read tcp 127.0.0.1:1->127.0.0.1:2: " + e.err.Error() }
func (e *netOpError) Unwrap() error   { return e.err }
func (e *netOpError) Timeout() bool   { return errors.Is(e.err, timeoutError{}) }
func (e *netOpError) Temporary() bool { return false }

type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }

func TestParseRetryDelay(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"37s": 37 * time.Second, "1.5s": 1500 * time.Millisecond, "0.250s": 250 * time.Millisecond, " 2s ": 2 * time.Second,
		"0s": 0, "": 0, "2": 0, "-3s": 0, "2m": 0, "abc s": 0, "1e300s": 0, "NaNs": 0,
	} {
		if got := parseRetryDelay(in); got != want {
			t.Errorf("parseRetryDelay(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"3": 3 * time.Second, "120": 2 * time.Minute, "": 0, "0": 0, "-1": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzParseRetryDelay(f *testing.F) {
	for _, s := range []string{"37s", "1.5s", "", "-1s", "1e9s", "0x10s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := parseRetryDelay(s); d < 0 || d > 100*24*time.Hour {
			t.Fatalf("parseRetryDelay(%q) = %s", s, d)
		}
		if d := parseRetryAfter(s, time.Now()); d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %s", s, d)
		}
	})
}
