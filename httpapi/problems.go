package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// ProblemTypePrefix starts the type URI of every problem Quire answers: the
// type is ProblemTypePrefix + code, e.g. urn:quire:problem:not_pdf. A URN,
// so that it never depends on the Host a request names.
const ProblemTypePrefix = "urn:quire:problem:"

// ProblemCode is one documented problem: its short code, the status it is
// answered with, and what it means. README.md's "Errors" table lists the
// same codes (TestProblemCodesMatchREADME).
type ProblemCode struct {
	Code    string
	Status  int
	Meaning string
}

// ProblemCodes are all the codes a problem of the API can carry.
var ProblemCodes = []ProblemCode{
	{"malformed_request", http.StatusBadRequest, "The request cannot be read (a malformed multipart body, an upload cut short, a bad JSON body or header)."},
	{"unauthorized", http.StatusUnauthorized, "No credential, or one that is not valid (unknown or revoked key, wrong admin token)."},
	{"insufficient_credits", http.StatusPaymentRequired, "The account has too few credits for the job; nothing was charged."},
	{"forbidden", http.StatusForbidden, "A valid credential of the wrong kind (an API key on /v1/admin/*, the admin token on an account's route), or a cross-origin dashboard request."},
	{"not_found", http.StatusNotFound, "No such route, job, account, key or node (a job of another account is not found either)."},
	{"method_not_allowed", http.StatusMethodNotAllowed, "The route exists but not with this method; the Allow header lists those it has."},
	{"upload_too_slow", http.StatusRequestTimeout, "The upload arrived slower than the node's minimum rate."},
	{"conflict", http.StatusConflict, "The request conflicts with the state: the job has already finished, or an idempotency key was used for another request."},
	{"too_large", http.StatusRequestEntityTooLarge, "The PDF is larger than the upload limit."},
	{"too_many_pages", http.StatusRequestEntityTooLarge, "The PDF has more pages than the node's limit."},
	{"field_too_large", http.StatusRequestEntityTooLarge, "A form field other than file is larger than its limit; the detail names the field and the limit."},
	{"unsupported_media_type", http.StatusUnsupportedMediaType, "The body is not multipart/form-data (or not JSON where JSON is expected)."},
	{"invalid_request", http.StatusUnprocessableEntity, "A parameter or field has a wrong value (unknown extractor or field, bad chunk_pages, text not UTF-8, ...); the detail says which."},
	{"missing_field", http.StatusUnprocessableEntity, "A required multipart field is missing; the detail names it (file)."},
	{"not_pdf", http.StatusUnprocessableEntity, "The file is not a PDF (it does not start with %PDF-)."},
	{"empty", http.StatusUnprocessableEntity, "The file is empty."},
	{"encrypted", http.StatusUnprocessableEntity, "The PDF is encrypted with a password."},
	{"damaged", http.StatusUnprocessableEntity, "The PDF is damaged and cannot be read."},
	{"no_pages", http.StatusUnprocessableEntity, "The PDF has no pages."},
	{"too_deep", http.StatusUnprocessableEntity, "The PDF is nested too deeply to be read."},
	{"too_much_data", http.StatusUnprocessableEntity, "Opening the PDF needs more memory than a reader may use (--pdf-memory-limit-mb): a stream decompresses to too much data."},
	{"rate_limited", http.StatusTooManyRequests, "Too many requests, active jobs, uploads or failed logins; retry after Retry-After seconds."},
	{"client_closed", 499, "The client closed the request before the answer (seen in logs and metrics only)."},
	{"internal", http.StatusInternalServerError, "An unexpected error; the request was not applied."},
	{"bad_gateway", http.StatusBadGateway, "Another node of the cluster did not take the request (e.g. a drain)."},
	{"unavailable", http.StatusServiceUnavailable, "The node or a part of the cluster it needs cannot serve now (ledger, store, PDF reader, upload slots); retry after Retry-After seconds."},
	{"async_disabled", http.StatusServiceUnavailable, "The rollout policy has switched the async path off; retry after Retry-After seconds."},
	{"timeout", http.StatusGatewayTimeout, "A synchronous request did not finish in time; the job goes on, at the Location given."},
	{"insufficient_storage", http.StatusInsufficientStorage, "The node's disk is full: nothing was stored and no credits were charged."},
}

// defaultCodes is the code of a problem made without one, by its status.
var defaultCodes = map[int]string{
	http.StatusBadRequest: "malformed_request", http.StatusUnauthorized: "unauthorized",
	http.StatusPaymentRequired: "insufficient_credits", http.StatusForbidden: "forbidden",
	http.StatusNotFound: "not_found", http.StatusMethodNotAllowed: "method_not_allowed",
	http.StatusRequestTimeout: "upload_too_slow", http.StatusConflict: "conflict",
	http.StatusRequestEntityTooLarge: "too_large", http.StatusUnsupportedMediaType: "unsupported_media_type",
	http.StatusUnprocessableEntity: "invalid_request", http.StatusTooManyRequests: "rate_limited", 499: "client_closed",
	http.StatusInternalServerError: "internal", http.StatusBadGateway: "bad_gateway",
	http.StatusServiceUnavailable: "unavailable", http.StatusGatewayTimeout: "timeout",
	http.StatusInsufficientStorage: "insufficient_storage",
}

// Problem is an RFC 9457 problem with a stable type URI and Quire's
// short code. huma.NewError makes one for every error huma answers, so
// the OpenAPI document's error schema has the code with its enum.
type Problem struct {
	huma.ErrorModel
	Code string `json:"code,omitempty" doc:"A short, stable name of the problem (see the README's Errors table)." enum:"malformed_request,unauthorized,insufficient_credits,forbidden,not_found,method_not_allowed,upload_too_slow,conflict,too_large,too_many_pages,field_too_large,unsupported_media_type,invalid_request,missing_field,not_pdf,empty,encrypted,damaged,no_pages,too_deep,too_much_data,rate_limited,client_closed,internal,bad_gateway,unavailable,async_disabled,timeout,insufficient_storage"`
}

// codeFor is the code of a problem of this status made without one.
func codeFor(status int) string {
	if c, ok := defaultCodes[status]; ok {
		return c
	}
	if status >= 500 {
		return "internal"
	}
	if status >= 400 {
		return "invalid_request"
	}
	return ""
}

// newProblem is a problem with its code and the code's type URI.
func newProblem(status int, code, detail string) *Problem {
	p := &Problem{ErrorModel: huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail}, Code: code}
	if code != "" {
		p.Type = ProblemTypePrefix + code
	}
	if p.Title == "" && status == 499 {
		p.Title = "Client Closed Request"
	}
	return p
}

func init() {
	orig := huma.NewError
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		se := orig(status, msg, errs...)
		em, ok := se.(*huma.ErrorModel)
		if !ok {
			return se
		}
		p := newProblem(status, codeFor(status), em.Detail)
		p.Title, p.Errors = em.Title, em.Errors
		return p
	}
}

// writeProblem writes an RFC 9457 problem outside huma's handlers, with the
// default code of its status.
func writeProblem(w http.ResponseWriter, status int, detail, retryAfter string) {
	writeCodedProblem(w, status, codeFor(status), detail, retryAfter)
}

// writeCodedProblem writes an RFC 9457 problem with this code outside
// huma's handlers.
func writeCodedProblem(w http.ResponseWriter, status int, code, detail, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(newProblem(status, code, detail))
}

// routeMiss records what the mux's own 404 or 405 handler would write.
type routeMiss struct {
	h      http.Header
	status int
}

func (m *routeMiss) Header() http.Header         { return m.h }
func (m *routeMiss) Write(b []byte) (int, error) { return len(b), nil }
func (m *routeMiss) WriteHeader(status int)      { m.status = status }

// serveMux serves r with the mux, but answers a request no route matches
// (404) or that a route has with another method (405, with its Allow
// header) with a problem instead of the mux's text/plain.
func (a *API) serveMux(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.mux.Handler(r)
	if pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	miss := &routeMiss{h: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(miss, r)
	switch miss.status {
	case http.StatusNotFound:
		writeProblem(w, http.StatusNotFound, "no such route: "+r.URL.Path, "")
	case http.StatusMethodNotAllowed:
		if allow := miss.h.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, miss.h.Get("Allow")), "")
	default:
		a.mux.ServeHTTP(w, r)
	}
}
