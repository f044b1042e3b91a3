package fakegemini

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors of the package.
var (
	// ErrInvalidConfig wraps every complaint of Config.Validate.
	ErrInvalidConfig = errors.New("fakegemini: invalid config")
	// ErrUnknownOutcome is returned for a name that no Outcome has.
	ErrUnknownOutcome = errors.New("fakegemini: unknown outcome")
)

// The type URLs of the google.rpc error details the fake sends.
const (
	typeRetryInfo    = "type.googleapis.com/google.rpc.RetryInfo"
	typeQuotaFailure = "type.googleapis.com/google.rpc.QuotaFailure"
	typeHelp         = "type.googleapis.com/google.rpc.Help"
	typeErrorInfo    = "type.googleapis.com/google.rpc.ErrorInfo"
	typeBadRequest   = "type.googleapis.com/google.rpc.BadRequest"
)

// The quota IDs named in QuotaFailure details.
const (
	// QuotaPerMinute is the quotaId of per-minute 429s (injected or RPM).
	QuotaPerMinute = "GenerateRequestsPerMinutePerProjectPerModel"
	// QuotaPerDay is the quotaId of daily-quota 429s.
	QuotaPerDay = "GenerateRequestsPerDayPerProjectPerModel"
)

const quotaMessage = "You exceeded your current quota, please check your plan and billing details. " +
	"For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."

// apiError is the body of an error answer: {"error": apiError}, Google's
// format that genai decodes into genai.APIError.
type apiError struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`

	// retryAfter, when positive, is sent as a Retry-After header.
	retryAfter time.Duration
}

func (e apiError) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(e.retryAfter), 10))
	}
	writeJSON(w, e.Code, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value the fake answers with is built to marshal.
		panic("fakegemini: marshal answer: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

// durationJSON formats d as google.protobuf.Duration does in JSON ("37s",
// "1.5s").
func durationJSON(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func retryInfo(d time.Duration) map[string]any {
	return map[string]any{"@type": typeRetryInfo, "retryDelay": durationJSON(d)}
}

func quotaFailure(quotaID, metric, model string, value int) map[string]any {
	return map[string]any{
		"@type": typeQuotaFailure,
		"violations": []map[string]any{{
			"quotaMetric":     metric,
			"quotaId":         quotaID,
			"quotaDimensions": map[string]string{"location": "global", "model": model},
			"quotaValue":      strconv.Itoa(value),
		}},
	}
}

func quotaHelp() map[string]any {
	return map[string]any{
		"@type": typeHelp,
		"links": []map[string]string{{
			"description": "Learn more about Gemini API quotas",
			"url":         "https://ai.google.dev/gemini-api/docs/rate-limits",
		}},
	}
}

// errPerMinute is a per-minute 429: an injected one, or the RPM quota's
// (delay is then the time until a slot frees, in whole seconds).
func errPerMinute(model string, rpm int, delay time.Duration) apiError {
	if rpm == 0 {
		rpm = 60
	}
	return apiError{
		Code:    http.StatusTooManyRequests,
		Message: quotaMessage,
		Status:  "RESOURCE_EXHAUSTED",
		Details: []map[string]any{
			quotaFailure(QuotaPerMinute, "generativelanguage.googleapis.com/generate_content_requests", model, rpm),
			quotaHelp(),
			retryInfo(delay),
		},
		retryAfter: delay,
	}
}

// errPerDay is a daily-quota 429: no RetryInfo, no Retry-After.
func errPerDay(model string) apiError {
	return apiError{
		Code:    http.StatusTooManyRequests,
		Message: quotaMessage,
		Status:  "RESOURCE_EXHAUSTED",
		Details: []map[string]any{
			quotaFailure(QuotaPerDay, "generativelanguage.googleapis.com/generate_content_requests_per_day", model, 1000),
			quotaHelp(),
		},
	}
}

// errConcurrency is the concurrency cap's 429, like Gemini's answer when
// shared capacity runs out: no quota named, a short RetryInfo.
func errConcurrency(delay time.Duration) apiError {
	return apiError{
		Code:       http.StatusTooManyRequests,
		Message:    "Resource has been exhausted (e.g. check quota).",
		Status:     "RESOURCE_EXHAUSTED",
		Details:    []map[string]any{retryInfo(delay)},
		retryAfter: delay,
	}
}

func errUnavailable() apiError {
	return apiError{
		Code:    http.StatusServiceUnavailable,
		Message: "The model is overloaded. Please try again later.",
		Status:  "UNAVAILABLE",
	}
}

func errInternal() apiError {
	return apiError{
		Code:    http.StatusInternalServerError,
		Message: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
		Status:  "INTERNAL",
	}
}

func errInvalid(message string) apiError {
	return apiError{Code: http.StatusBadRequest, Message: message, Status: "INVALID_ARGUMENT"}
}

// errInvalidField is a 400 naming the request field at fault.
func errInvalidField(field, message string) apiError {
	e := errInvalid(message)
	e.Details = []map[string]any{{
		"@type":           typeBadRequest,
		"fieldViolations": []map[string]string{{"field": field, "description": message}},
	}}
	return e
}

func errAPIKey() apiError {
	return apiError{
		Code:    http.StatusBadRequest,
		Message: "API key not valid. Please pass a valid API key.",
		Status:  "INVALID_ARGUMENT",
		Details: []map[string]any{{
			"@type":    typeErrorInfo,
			"reason":   "API_KEY_INVALID",
			"domain":   "googleapis.com",
			"metadata": map[string]string{"service": "generativelanguage.googleapis.com"},
		}},
	}
}

func errDenied() apiError {
	return apiError{
		Code:    http.StatusForbidden,
		Message: "The caller does not have permission",
		Status:  "PERMISSION_DENIED",
	}
}

// errNoFile is Gemini's answer for a file that does not exist (or was
// deleted): a 403, not a 404.
func errNoFile(id string) apiError {
	return apiError{
		Code:    http.StatusForbidden,
		Message: "You do not have permission to access the File " + id + " or it may not exist.",
		Status:  "PERMISSION_DENIED",
	}
}

func errNotFound(what string) apiError {
	return apiError{Code: http.StatusNotFound, Message: what + " not found.", Status: "NOT_FOUND"}
}

func errShuttingDown() apiError {
	e := errUnavailable()
	e.Message = "The service is shutting down."
	return e
}
