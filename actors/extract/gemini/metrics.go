package gemini

import (
	"context"
	"errors"
	"net"
	"net/http"

	"google.golang.org/genai"

	"github.com/quirehq/quire/metrics"
)

// countFailedCall counts, in quire_gemini_requests_total, a generateContent
// call that failed with err; p (may be nil) is what the transport saw of its
// answer. A call the node aborted itself (the job was cancelled: ctx, the
// chunk's context, was cancelled) got no answer and is not counted.
func countFailedCall(ctx context.Context, err error, p *probe) {
	if errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	metrics.GeminiRequest(callOutcome(err, p))
}

// callOutcome is the outcome of a generateContent call that failed with err.
func callOutcome(err error, p *probe) metrics.GeminiOutcome {
	status := 0
	if p != nil {
		status, _, _ = p.last()
	}
	var aerr genai.APIError
	if errors.As(err, &aerr) && aerr.Code != 0 {
		status = aerr.Code
	}
	var nerr net.Error
	switch {
	case status == http.StatusTooManyRequests:
		return metrics.GeminiRateLimited
	case status >= 500:
		return metrics.GeminiServerError
	case status == http.StatusRequestTimeout || status == 499:
		return metrics.GeminiTimeout
	case status >= 400:
		return metrics.GeminiError
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return metrics.GeminiTimeout
	}
	return metrics.GeminiError
}

// answerOutcome is the outcome of a call that was answered: ok, unless the
// answer had no usable candidate (blocked, recitation, empty); err is
// answerText's.
func answerOutcome(err error) metrics.GeminiOutcome {
	if err != nil {
		return metrics.GeminiError
	}
	return metrics.GeminiOK
}
