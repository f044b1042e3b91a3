package gemini

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genai"

	"github.com/quirehq/quire/metrics"
)

func TestCallOutcome(t *testing.T) {
	probed := func(status int) *probe { return &probe{status: status} }
	for _, tc := range []struct {
		name string
		err  error
		p    *probe
		want metrics.GeminiOutcome
	}{
		{"429", genai.APIError{Code: 429}, nil, metrics.GeminiRateLimited},
		{"503", genai.APIError{Code: 503}, nil, metrics.GeminiServerError},
		{"500 seen by the transport only", errors.New("upload failed"), probed(500), metrics.GeminiServerError},
		{"429 seen by the transport only", errors.New("upload failed"), probed(429), metrics.GeminiRateLimited},
		{"408", genai.APIError{Code: 408}, nil, metrics.GeminiTimeout},
		{"400", genai.APIError{Code: 400}, nil, metrics.GeminiError},
		{"403", genai.APIError{Code: 403}, probed(403), metrics.GeminiError},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), nil, metrics.GeminiTimeout},
		{"net timeout", &netOpError{err: timeoutError{}}, nil, metrics.GeminiTimeout},
		{"reset", errors.New("connection reset by peer"), nil, metrics.GeminiError},
	} {
		if got := callOutcome(tc.err, tc.p); got != tc.want {
			t.Errorf("%s: callOutcome = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := answerOutcome(nil); got != metrics.GeminiOK {
		t.Errorf("answerOutcome(nil) = %q, want ok", got)
	}
	if got := answerOutcome(errors.New("blocked")); got != metrics.GeminiError {
		t.Errorf("answerOutcome(blocked) = %q, want error", got)
	}
}
