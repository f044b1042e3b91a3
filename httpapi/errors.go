package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/persistence"
)

// problem maps an error of the layers below to an RFC 9457 problem: the one
// place where errors become HTTP statuses.
func problem(log *slog.Logger, err error) error {
	var se huma.StatusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, node.ErrJobNotFound):
		return huma.Error404NotFound("no such job")
	case errors.Is(err, node.ErrJobFinished):
		return huma.Error409Conflict("the job has already finished")
	case errors.Is(err, ledger.ErrInsufficientCredits):
		return huma.Error402PaymentRequired(clean(err))
	case errors.Is(err, ledger.ErrTooManyActiveJobs):
		return huma.ErrorWithHeaders(huma.NewError(http.StatusTooManyRequests, clean(err)), http.Header{"Retry-After": {"10"}})
	case errors.Is(err, ledger.ErrConflict):
		return huma.Error409Conflict(clean(err))
	case errors.Is(err, persistence.ErrUploadTooLarge):
		return huma.Error413RequestEntityTooLarge(clean(err))
	case errors.Is(err, node.ErrTooManyPages):
		return newProblem(http.StatusRequestEntityTooLarge, "too_many_pages", clean(err))
	case pdfCode(err) != "":
		return newProblem(http.StatusUnprocessableEntity, pdfCode(err), clean(err))
	case errors.Is(err, pdf.ErrNoReader):
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("no PDF reader is available on this node; try again"), http.Header{"Retry-After": {"5"}})
	case errors.Is(err, node.ErrInvalidRequest), errors.Is(err, extract.ErrUnknownExtractor),
		errors.Is(err, ledger.ErrUnknownAccount):
		return huma.Error422UnprocessableEntity(clean(err))
	case errors.Is(err, persistence.ErrInsufficientStorage):
		return errInsufficientStorage(log, err)
	case errors.Is(err, persistence.ErrReopening):
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("the node's store is reopening; try again"), http.Header{"Retry-After": {"1"}})
	case errors.Is(err, persistence.ErrReadOnly):
		log.Error("request refused: the store is read-only", "err", err)
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("the node's store takes no writes; nothing was stored and no credits were charged"),
			http.Header{"Retry-After": {"60"}})
	case errors.Is(err, ledger.ErrUnavailable), errors.Is(err, node.ErrUnavailable):
		log.Warn("request failed: unavailable", "err", err)
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(unavailableDetail), http.Header{"Retry-After": {"5"}})
	case errors.Is(err, context.Canceled):
		return huma.NewError(499, "the client closed the request")
	}
	log.Error("request failed", "err", err)
	return huma.Error500InternalServerError("internal error; the request was not applied")
}

// pdfCodes are the problem codes of the ways a PDF cannot be read.
var pdfCodes = []struct {
	err  error
	code string
}{
	{pdf.ErrEmpty, "empty"}, {pdf.ErrNotPDF, "not_pdf"}, {pdf.ErrEncrypted, "encrypted"},
	{pdf.ErrUnreadable, "damaged"}, {pdf.ErrNoPages, "no_pages"}, {pdf.ErrTooDeep, "too_deep"},
	{pdf.ErrTooLarge, "too_much_data"},
}

// pdfCode is the problem code of a PDF that cannot be read, or "".
func pdfCode(err error) string {
	for _, c := range pdfCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// unavailableDetail is the fixed detail of a 503 for a part of the cluster
// that does not answer; what failed goes to the log, not to the client.
const unavailableDetail = "the cluster's ledger or a node it needs does not answer now; retry in a moment"

// maxDetail bounds the detail of a problem made from an error.
const maxDetail = 500

// clean strips the package prefixes of wrapped sentinel errors for people:
// "node: invalid request: pdf: the file is empty" reads "the file is empty".
// It keeps the first line only, and nothing from "wasm error" on: a problem
// never carries a stack trace or the reader's internals.
func clean(err error) string {
	msg := err.Error()
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, "wasm error"); i >= 0 {
		msg = strings.TrimRight(msg[:i], ": ")
	}
	if len(msg) > maxDetail {
		msg = strings.ToValidUTF8(msg[:maxDetail], "") + "..."
	}
	for {
		trimmed := false
		for _, p := range []string{"node: invalid request: ", "node: ", "pdf: ", "ledger: insufficient credits: ",
			"ledger: unavailable: ", "ledger: ", "persistence: ", "extract: "} {
			if len(msg) > len(p) && msg[:len(p)] == p {
				msg = msg[len(p):]
				trimmed = true
			}
		}
		if !trimmed {
			return msg
		}
	}
}

// --- Disk full (507) ---

// errInsufficientStorage is the answer to a write refused or failed for lack
// of disk space: 507, code insufficient_storage. Nothing was stored or
// charged. Its cause is logged at debug level only: the store logs a full
// disk once a minute, not once per request.
func errInsufficientStorage(log *slog.Logger, err error) error {
	log.Debug("request refused: disk full", "err", err)
	return newProblem(http.StatusInsufficientStorage, "insufficient_storage",
		"the node's disk is full: nothing was stored and no credits were charged; try again later")
}
