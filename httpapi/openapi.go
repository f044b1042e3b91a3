package httpapi

import (
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
)

// This file completes the OpenAPI document once every route is registered,
// so that it passes Redocly's recommended rules and Spectral's spectral:oas
// with no error and no warning (cmd/quire/openapi_clients_e2e_test.go), and
// so that generated clients know every answer an operation can give.

// openAPITags are the document's global tags; every operation uses one.
var openAPITags = []*huma.Tag{
	{Name: "jobs", Description: "Submit PDFs, follow their jobs, read and cancel them."},
	{Name: "credits", Description: "The calling account's credit balance."},
	{Name: "health", Description: "Liveness and readiness of the node; open, no credential."},
	{Name: "admin", Description: "Accounts, keys, credits, limits, the cluster and rollouts; needs the admin token."},
}

// openAPIDescriptions describe the operations registered without one.
var openAPIDescriptions = map[string]string{
	"healthz":        "Answers 200 while the process runs. Open: no credential.",
	"create-account": "Creates an account with its first API key, shown once in the answer.",
	"grant-credits":  "Adds credits to an account (or removes them with a negative amount); the grant is written to the account's ledger.",
	"list-keys":      "Lists an account's API keys (their ids and prefixes, never the keys).",
	"get-cluster":    "The cluster as this node sees it: its members, their state and their load.",
	"get-credits":    "The calling account's balance and its latest ledger entries.",
	"list-jobs":      "The calling account's jobs, newest first, a page at a time: follow next_cursor until it is empty.",
	"get-job":        "A job's status and progress.",
}

// finishOpenAPI adds servers, tags, open security, descriptions, the error
// answers every operation can give and the Retry-After header where it is sent.
func finishOpenAPI(oa *huma.OpenAPI) {
	// A relative server: the document never echoes the request's Host.
	oa.Servers = []*huma.Server{{URL: "/", Description: "The node serving this document (any node of the cluster)."}}
	if oa.Info.Contact == nil {
		oa.Info.Contact = &huma.Contact{Name: "Quire operators"}
	}
	if oa.Info.License == nil {
		// No licence file in the repository yet: an SPDX LicenseRef, not an open licence.
		oa.Info.License = &huma.License{Name: "Proprietary", Identifier: "LicenseRef-Quire-Proprietary"}
	}
	oa.Tags = openAPITags
	for _, item := range oa.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch, item.Head, item.Options} {
			if op != nil {
				finishOperation(op)
			}
		}
	}
}

func finishOperation(op *huma.Operation) {
	if op.Description == "" {
		op.Description = openAPIDescriptions[op.OperationID]
	}
	if op.Description == "" {
		op.Description = op.Summary
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	// checkUTF8 (utf8.go) answers 422 to any request.
	codes := []int{http.StatusUnprocessableEntity}
	switch {
	case len(op.Security) == 0:
		op.Security = []map[string][]string{} // "security: []": open on purpose
	case isAdminOp(op):
		// authenticate: a missing or wrong token, an API key (the wrong
		// kind of credential), the login throttle.
		codes = append(codes, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusInternalServerError)
	default:
		// authenticate: a missing or unknown key, the admin token (the wrong
		// kind of credential), the account's rate limit, a ledger that
		// cannot be read.
		codes = append(codes, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusServiceUnavailable)
	}
	if op.OperationID == "create-job" || op.OperationID == opProcess {
		// submitOnce (idempotency.go): a key still in use is a 409 with Retry-After.
		codes = append(codes, http.StatusConflict)
	}
	for _, code := range codes {
		key := strconv.Itoa(code)
		if op.Responses[key] == nil {
			op.Responses[key] = problemResponse(code)
		}
	}
	for key, res := range op.Responses {
		if key == "429" || key == "503" || (key == "409" && (op.OperationID == "create-job" || op.OperationID == opProcess)) {
			if res.Headers == nil {
				res.Headers = map[string]*huma.Header{}
			}
			res.Headers["Retry-After"] = &huma.Header{
				Description: "Seconds to wait before trying again.",
				Schema:      &huma.Schema{Type: huma.TypeInteger, Minimum: ptrFloat(0)},
			}
		}
	}
}

func isAdminOp(op *huma.Operation) bool {
	_, ok := op.Security[0][schemeAdmin]
	return ok
}

// problemResponse is an RFC 9457 problem answer with code's status.
func problemResponse(code int) *huma.Response {
	return &huma.Response{
		Description: http.StatusText(code),
		Content: map[string]*huma.MediaType{
			"application/problem+json": {Schema: &huma.Schema{Ref: "#/components/schemas/Problem"}},
		},
	}
}

func ptrFloat(f float64) *float64 { return &f }
