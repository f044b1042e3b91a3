package metrics

import (
	"slices"
	"strconv"
	"strings"
)

// Route is the path a request or a job took: the rollout policy's answer.
type Route string

// Routes.
const (
	RouteAsync Route = "async"
	RouteSync  Route = "sync"
)

// JobStatus is a terminal status of a job.
type JobStatus string

// Terminal job statuses.
const (
	StatusCompleted          JobStatus = "completed"
	StatusPartiallyCompleted JobStatus = "partially_completed"
	StatusFailed             JobStatus = "failed"
	StatusCancelled          JobStatus = "cancelled"
)

// ChunkOutcome is how one attempt at a chunk ended. Done, failed and
// cancelled are final; after retried, lost and rate_limited another attempt
// follows.
type ChunkOutcome string

// Chunk attempt outcomes.
const (
	OutcomeDone        ChunkOutcome = "done"         // the chunk's result is recorded
	OutcomeFailed      ChunkOutcome = "failed"       // failed for good: no attempt left, or a permanent error
	OutcomeRetried     ChunkOutcome = "retried"      // failed, another attempt is scheduled
	OutcomeLost        ChunkOutcome = "lost"         // the member running it left or died; placed again
	OutcomeCrashed     ChunkOutcome = "crashed"      // its node crashed while it ran; placed again, alone
	OutcomeRateLimited ChunkOutcome = "rate_limited" // the extractor was rate limited; waits and tries again
	OutcomeCancelled   ChunkOutcome = "cancelled"    // the job was cancelled
)

// GeminiOutcome is how one request to the Gemini API ended.
type GeminiOutcome string

// Gemini request outcomes.
const (
	GeminiOK          GeminiOutcome = "ok"
	GeminiRateLimited GeminiOutcome = "429"
	GeminiServerError GeminiOutcome = "5xx"
	GeminiTimeout     GeminiOutcome = "timeout"
	GeminiError       GeminiOutcome = "error" // anything else: another 4xx, an answer without a usable candidate (blocked, recitation), a failed connection
)

// Size is a job's size bucket, by page count: the buckets of the rollout
// plan's test cases (under 30, 30 to 100, 100 to 300, 300 pages and more).
type Size string

// Size buckets. Each is half-open: 30to100 holds 30..99 pages.
const (
	SizeUnder30  Size = "lt30"
	Size30To100  Size = "30to100"
	Size100To300 Size = "100to300"
	Size300Plus  Size = "300plus"
)

// RolloutOutcome is the class of the answer to a request the rollout policy
// routed: ok (2xx/3xx: a sync result, or an async job accepted), client_error
// (4xx), server_error (5xx).
type RolloutOutcome string

// Rollout outcomes.
const (
	RolloutOK          RolloutOutcome = "ok"
	RolloutClientError RolloutOutcome = "client_error"
	RolloutServerError RolloutOutcome = "server_error"
)

// unknown is the label value recorded for a value outside its type's set, so
// that a bug cannot grow the number of series without bound.
const unknown = "unknown"

var (
	routes          = []Route{RouteAsync, RouteSync}
	jobStatuses     = []JobStatus{StatusCompleted, StatusPartiallyCompleted, StatusFailed, StatusCancelled}
	chunkOutcomes   = []ChunkOutcome{OutcomeDone, OutcomeFailed, OutcomeRetried, OutcomeLost, OutcomeCrashed, OutcomeRateLimited, OutcomeCancelled}
	geminiOutcomes  = []GeminiOutcome{GeminiOK, GeminiRateLimited, GeminiServerError, GeminiTimeout, GeminiError}
	sizes           = []Size{SizeUnder30, Size30To100, Size100To300, Size300Plus}
	rolloutOutcomes = []RolloutOutcome{RolloutOK, RolloutClientError, RolloutServerError}
	httpMethods     = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)

// known returns v as a label value if it is one of all, else "unknown".
func known[T ~string](v T, all []T) string {
	if slices.Contains(all, v) {
		return string(v)
	}
	return unknown
}

// SizeOf returns the size bucket of a job of that many pages.
func SizeOf(pages int) Size {
	switch {
	case pages < 30:
		return SizeUnder30
	case pages < 100:
		return Size30To100
	case pages < 300:
		return Size100To300
	default:
		return Size300Plus
	}
}

// Cohort returns the rollout cohort label of an account: account_number % 100
// (the number the rollout policy compares with its percentage) rounded down
// to its decade, "0-9" ... "90-99". Ten values instead of a hundred keep the
// number of series bounded; the rollout's steps (10, 25, 50, 75, 100 %) fall on
// decade boundaries except 25 %, where cohort "20-29" holds accounts of both
// routes, which the route label tells apart.
func Cohort(accountNumber int64) string {
	n := accountNumber % 100
	if n < 0 {
		n += 100
	}
	lo := n / 10 * 10
	return strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(lo+9, 10)
}

// cohorts returns every cohort label, in order.
func cohorts() []string {
	all := make([]string, 0, 10)
	for n := int64(0); n < 100; n += 10 {
		all = append(all, Cohort(n))
	}
	return all
}

// rolloutOutcome classes an HTTP status code.
func rolloutOutcome(status int) RolloutOutcome {
	switch {
	case status >= 500:
		return RolloutServerError
	case status >= 400:
		return RolloutClientError
	default:
		return RolloutOK
	}
}

// series returns the name of one series: name{k1="v1",k2="v2"}, label values
// escaped as the Prometheus text format wants.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(labels[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
