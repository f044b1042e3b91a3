package metrics

import (
	"strconv"
	"strings"
	"time"
)

// httpBuckets are the upper bounds (seconds) of
// quire_http_request_duration_seconds: 5 ms to 1 min (uploads of large PDFs
// and the legacy synchronous path are slow).
var httpBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// unmatched is the route label of a request that matched no route.
const unmatched = "unmatched"

func init() {
	for _, r := range routes {
		for _, c := range cohorts() {
			for _, o := range rolloutOutcomes {
				set.GetOrCreateCounter(series("quire_rollout_requests_total", "route", string(r), "cohort", c, "outcome", string(o)))
			}
		}
	}
}

// HTTPRequest counts one answered HTTP request and records its duration.
// route is the route's pattern as registered ("/v1/jobs/{id}"), never the
// request's path, which would make a series per job; "" means the request
// matched no route. A method outside the standard ones is recorded as
// "unknown".
func HTTPRequest(route, method string, status int, took time.Duration) {
	if route == "" {
		route = unmatched
	}
	set.GetOrCreateCounter(series("quire_http_requests_total",
		"route", route, "method", known(strings.ToUpper(method), httpMethods), "status", strconv.Itoa(status))).Inc()
	set.GetOrCreatePrometheusHistogramExt(series("quire_http_request_duration_seconds", "route", route), httpBuckets).
		Update(took.Seconds())
}

// RolloutRequest counts a request the rollout policy routed (the legacy
// POST /v1/process), by the route it took, the account's cohort and the class
// of the status code it was answered with. How the async jobs it started end
// is in quire_jobs_finished_total{route="async"}.
func RolloutRequest(route Route, accountNumber int64, status int) {
	set.GetOrCreateCounter(series("quire_rollout_requests_total",
		"route", known(route, routes), "cohort", Cohort(accountNumber), "outcome", string(rolloutOutcome(status)))).Inc()
}
