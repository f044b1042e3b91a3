// Package httpapi is Quire's REST facade (huma v2): the operations of the v1
// contract, bearer-key auth, RFC 9457 problem+json errors, health and
// readiness, and the OpenAPI document at /openapi.json with docs at /docs.
//
// The API talks to a Backend (a node.Node in production). Errors from the
// layers below are mapped to HTTP statuses in one place, errors.go.
package httpapi
