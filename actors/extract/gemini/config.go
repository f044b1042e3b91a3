package gemini

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/quirehq/quire/actors/pdf"
)

// Defaults that a zero field of Config stands for.
const (
	// DefaultModel is the model of jobs that name none.
	DefaultModel = "gemini-2.5-flash"
	// DefaultInlineMaxBytes is the largest chunk sent inline; larger ones
	// go through the Files API.
	DefaultInlineMaxBytes = 15 << 20
	// DefaultCacheDocs is how many parsed PDFs the Cutter made by New keeps.
	DefaultCacheDocs = 4
)

// Config sets up an Extractor.
type Config struct {
	// APIKey is the Gemini API key (required). It is sent in a header and
	// never logged.
	APIKey string
	// BaseURL is the API's address; "" is the SDK's default, which honours
	// GOOGLE_GEMINI_BASE_URL (the fake in bench/fakegemini, for one).
	BaseURL string
	// Model is the model of jobs that do not name one; "" is DefaultModel.
	Model string
	// InlineMaxBytes is the largest chunk PDF sent inline in the request;
	// a larger one is uploaded with the Files API (and deleted after the
	// call). 0 is DefaultInlineMaxBytes. Whatever it says, a chunk whose
	// request would pass Gemini's 20 MB request limit is uploaded.
	InlineMaxBytes int64
	// RPM and TPM are the project's quota of requests and tokens a minute
	// for the model. RPM 0 means none is known: the Limiter learns a rate
	// from the first 429. TPM 0 means no token limit.
	RPM int
	TPM int
	// RequestTimeout, when positive, caps one call to Gemini below the
	// chunk's own deadline.
	RequestTimeout time.Duration
	// Cutter cuts chunks out of PDFs; nil makes one that keeps
	// DefaultCacheDocs documents.
	Cutter *pdf.Cutter
	// Log receives the extractor's records; nil discards them.
	Log *slog.Logger
	// Now is the Limiter's clock (it waits with real timers, so the clock
	// must keep real time); nil is time.Now.
	Now func() time.Time
}

// ErrInvalidConfig wraps every complaint of Config.Validate.
var ErrInvalidConfig = errors.New("gemini: invalid config")

// Validate says, in plain words, what is wrong with c, or returns nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.APIKey == "" {
		bad("the API key is missing (set GEMINI_API_KEY, or get one at https://aistudio.google.com/apikey)")
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("the base URL %q is not an http(s) URL", c.BaseURL)
		}
	}
	if c.Model != "" && !validModel(c.Model) {
		bad("%q is not a Gemini model name (like %q)", c.Model, DefaultModel)
	}
	if c.InlineMaxBytes < 0 {
		bad("InlineMaxBytes must not be negative (got %d)", c.InlineMaxBytes)
	}
	if c.RPM < 0 || c.TPM < 0 {
		bad("RPM and TPM must not be negative (got %d and %d)", c.RPM, c.TPM)
	}
	if c.RequestTimeout < 0 {
		bad("RequestTimeout must not be negative (got %s)", c.RequestTimeout)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with each zero field that stands for a default
// set to it.
func (c Config) withDefaults() Config {
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.InlineMaxBytes == 0 {
		c.InlineMaxBytes = DefaultInlineMaxBytes
	}
	if c.Cutter == nil {
		c.Cutter = pdf.NewCutter(DefaultCacheDocs)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
