package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
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
	// Schema is a JSON Schema the output must match ("" for none), of at
	// most MaxSchemaBytes and nested at most MaxSchemaDepth deep.
	Schema string
	// Model is the model the job asked for ("" for the extractor's default).
	Model string
}

// Bounds of a job's JSON Schema: larger or deeper schemas are refused
// before anything is compiled or charged (a schema nested 9,000 deep took
// minutes and gigabytes to compile).
const (
	MaxSchemaBytes = 64 << 10
	MaxSchemaDepth = 32
)

// Result is the output of one chunk.
type Result struct {
	// Output is JSON.
	Output json.RawMessage
	// Usage is what the chunk consumed of a model (zero for local extractors).
	Usage Usage
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
		hint := ""
		if name == "gemini" {
			hint = " (the gemini extractor is on when the node has GEMINI_API_KEY)"
		}
		return nil, fmt.Errorf("%w %q: this node offers %s%s", ErrUnknownExtractor, name, strings.Join(r.Names(), ", "), hint)
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

// Usage is what a model call consumed.
type Usage struct {
	PromptTokens int64
	OutputTokens int64
	TotalTokens  int64
}

// ErrRateLimited marks an error by which the service asked to slow down.
var ErrRateLimited = errors.New("extract: rate limited")

type rateLimitedError struct {
	err   error
	after time.Duration
}

func (r rateLimitedError) Error() string { return r.err.Error() }
func (r rateLimitedError) Unwrap() []error {
	return []error{r.err, ErrRateLimited}
}

// RateLimited marks err as a request to slow down: the attempt is retried no
// sooner than after, and does not count against the job's attempt limit.
func RateLimited(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return rateLimitedError{err: err, after: after}
}

// RetryAfter reports whether err was marked by RateLimited, and the least
// delay it asked for.
func RetryAfter(err error) (time.Duration, bool) {
	var r rateLimitedError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// RequestValidator is implemented by extractors that can refuse a job's
// options (a prompt, a schema, a model) before the job is accepted, so that
// a bad request costs nothing.
type RequestValidator interface {
	ValidateRequest(req Request) error
}
