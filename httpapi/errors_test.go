package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/actors/pdf"
)

// TestProblemHidesInternals: a problem made from an error of the layers
// below never carries a stack trace, the PDF reader's internals, addresses
// of the cluster or the text of an internal failure; 5xx say a fixed
// sentence.
func TestProblemHidesInternals(t *testing.T) {
	trace := "wasm error: out of bounds memory access\nwasm stack trace:\n\tpdfium.wasm.FPDF_LoadDocument(i32) i32\n\tgoroutine 7 [running]:"
	cases := []struct {
		name   string
		err    error
		status int
		detail string // the whole detail, or "" to check only what it lacks
	}{
		{name: "reader trap", err: fmt.Errorf("%w: damaged: %s", pdf.ErrUnreadable, trace), status: http.StatusUnprocessableEntity},
		{name: "ledger unreachable", err: fmt.Errorf("%w: dial tcp 10.0.0.5:7000: connect: connection refused", ledger.ErrUnavailable),
			status: http.StatusServiceUnavailable, detail: unavailableDetail},
		{name: "node unreachable", err: fmt.Errorf("%w: node n2 at 10.0.0.5:8080: future: timeout", node.ErrUnavailable),
			status: http.StatusServiceUnavailable, detail: unavailableDetail},
		{name: "internal", err: errors.New("pebble: disk error at /var/lib/quire/000123.sst\n" + trace),
			status: http.StatusInternalServerError, detail: "internal error; the request was not applied"},
		{name: "long", err: fmt.Errorf("%w: %s", node.ErrInvalidRequest, strings.Repeat("x", 5000)), status: http.StatusUnprocessableEntity},
	}
	log := slog.New(slog.DiscardHandler)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := problem(log, tc.err)
			var se huma.StatusError
			if !errors.As(err, &se) || se.GetStatus() != tc.status {
				t.Fatalf("problem(%q) = %v, want status %d", tc.err, err, tc.status)
			}
			var cp *Problem
			if !errors.As(err, &cp) {
				t.Fatalf("problem(%q) is not a Problem", tc.err)
			}
			m := &cp.ErrorModel
			if cp.Code == "" || cp.Type != ProblemTypePrefix+cp.Code {
				t.Errorf("problem(%q): code %q, type %q", tc.err, cp.Code, cp.Type)
			}
			if tc.detail != "" && m.Detail != tc.detail {
				t.Errorf("detail %q, want %q", m.Detail, tc.detail)
			}
			for _, leak := range []string{"\n", "wasm", "stack", "goroutine", "10.0.0.5", "/var/lib", "pebble"} {
				if strings.Contains(m.Detail, leak) {
					t.Errorf("detail %q carries %q", m.Detail, leak)
				}
			}
			if len(m.Detail) > maxDetail+3 {
				t.Errorf("detail of %d bytes, want at most %d", len(m.Detail), maxDetail+3)
			}
		})
	}
}
