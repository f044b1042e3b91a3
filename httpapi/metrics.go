package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/quirehq/quire/metrics"
)

// MetricsPath is where a node serves its metrics, in the Prometheus text
// format (the metrics package). It is not an API operation: it is left out
// of the OpenAPI document, like the internal routes.
const MetricsPath = "/metrics"

// metricsHandler serves the metrics, to anyone unless Config.MetricsToken
// is set; then only to `Authorization: Bearer <token>`.
func (a *API) metricsHandler() http.Handler {
	h := metrics.Handler()
	if a.cfg.MetricsToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(a.cfg.MetricsToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quire-metrics"`)
			writeProblem(w, http.StatusUnauthorized, "the metrics need the metrics token (--metrics-token): send 'Authorization: Bearer <token>'", "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// countRequest records an answered request in quire_http_requests_total and
// quire_http_request_duration_seconds, by the pattern of the route it
// matched ("/v1/jobs/{id}"), never its path, which would make a series per
// job. A request passed to another node (forward) did not go through the
// mux: its route is looked up.
func (a *API) countRequest(r *http.Request, status int, took time.Duration) {
	pattern := r.Pattern
	if pattern == "" {
		_, pattern = a.mux.Handler(r)
	}
	metrics.HTTPRequest(routeOf(pattern), r.Method, status, took)
}

// routeOf is a mux pattern without its method and host: "GET /v1/jobs/{id}"
// is "/v1/jobs/{id}"; "" stays "" (no route).
func routeOf(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // a host before the path
	}
	return pattern
}
