package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Extractor turns a page range of a PDF into JSON output.
type Extractor interface {
	// Name is what a job names to choose this extractor ("text", "gemini").
	Name() string
	// Extract processes one chunk. An error wrapped by Permanent will not be
	// retried; any other error is transient and may be.
	Extract(ctx context.Context, req Request) (Result, error)
}

// Request is one chunk of work.
type Request struct {
	JobID     string
	PDFPath   string
	FirstPage int
	LastPage  int
	Prompt    string
	Schema    string
}

// Result is the output of one chunk.
type Result struct {
	// Output is JSON.
	Output json.RawMessage
}

// ErrPermanent marks an error that no retry can fix.
var ErrPermanent = errors.New("extract: permanent failure")

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() []error {
	return []error{p.err, ErrPermanent}
}

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Registry is the set of extractors a node offers, by name.
type Registry map[string]Extractor

// NewRegistry indexes extractors by name.
func NewRegistry(xs ...Extractor) Registry {
	r := Registry{}
	for _, x := range xs {
		r[x.Name()] = x
	}
	return r
}

// ErrUnknownExtractor means a job asked for an extractor this node does not offer.
var ErrUnknownExtractor = errors.New("extract: unknown extractor")

// Get returns the named extractor.
func (r Registry) Get(name string) (Extractor, error) {
	x, ok := r[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (available: %v)", ErrUnknownExtractor, name, r.Names())
	}
	return x, nil
}

// Names lists the extractors offered.
func (r Registry) Names() []string {
	var names []string
	for n := range r {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
