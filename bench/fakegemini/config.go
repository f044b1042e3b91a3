package fakegemini

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults that a zero field of Config stands for.
const (
	// DefaultRetryDelay is the RetryInfo delay of an injected per-minute 429
	// and of a concurrency-cap 429 when Config.RetryDelay is zero.
	DefaultRetryDelay = time.Second
	// DefaultMaxRequestBytes is Gemini's limit on a generateContent request
	// (inline data included).
	DefaultMaxRequestBytes = 20 << 20
	// DefaultMaxFileBytes limits one uploaded file; Gemini takes PDFs of up
	// to 50 MB.
	DefaultMaxFileBytes = 50 << 20
	// DefaultMaxPages is Gemini's limit on the pages of the documents of one
	// request.
	DefaultMaxPages = 1000
	// DefaultTokensPerPage is what Gemini counts for one PDF page.
	DefaultTokensPerPage = 258
)

// Config says how the fake behaves. The zero value answers every request at
// once, never fails and has no quota. Call Validate on configs built from
// user input; New panics on an invalid one.
type Config struct {
	// Seed makes faults and jitter reproducible: a request's fate depends
	// only on Seed, the SHA-256 of its documents and how many requests with
	// the same documents were admitted before it.
	Seed uint64

	// An answer comes LatencyBase + LatencyPerPage × pages + a uniform
	// jitter in [0, LatencyJitter) after the request was admitted. Errors
	// other than 500 (429, 400, 403, 503) answer at once.
	LatencyBase    time.Duration
	LatencyPerPage time.Duration
	LatencyJitter  time.Duration

	// Faults are the probabilities of each injected fault; their sum must
	// not exceed 1.
	Faults FaultRates

	// FailFirst makes the first FailFirst admitted requests for each
	// distinct document payload answer FailFirstKind (a fault), whatever
	// Faults says; later ones follow Faults.
	FailFirst     int
	FailFirstKind Outcome

	// MaxConcurrent caps the generateContent requests in flight; one above
	// the cap gets a 429 at once. 0 means no cap.
	MaxConcurrent int
	// RPM is a requests-per-minute quota over a sliding 60 s window of
	// admitted requests; one beyond it gets a 429 whose retryDelay is the
	// time until a slot frees, rounded up to whole seconds. 0 means none.
	RPM int
	// RetryDelay is the retryDelay (and Retry-After) of injected per-minute
	// 429s and of concurrency-cap 429s; 0 means DefaultRetryDelay.
	RetryDelay time.Duration

	// APIKey, when set, is the only key accepted (x-goog-api-key header or
	// key query parameter); others get 400 INVALID_ARGUMENT API_KEY_INVALID.
	APIKey string

	// MaxRequestBytes limits a generateContent body; 0 means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// MaxFileBytes limits an uploaded file; 0 means DefaultMaxFileBytes.
	MaxFileBytes int64
	// MaxPages limits the pages of one request's documents; 0 means
	// DefaultMaxPages.
	MaxPages int
	// TokensPerPage is the prompt tokens counted per PDF page (or other
	// document); 0 means DefaultTokensPerPage.
	TokensPerPage int

	// Now is the clock of the RPM window and of timestamps; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives one debug record per generateContent request; nil
	// means none.
	Logger *slog.Logger
}

// FaultRates holds the probability (0..1) of each injectable fault; see the
// Outcome constants for what each looks like.
type FaultRates struct {
	RateLimited      float64
	DailyQuota       float64
	Unavailable      float64
	Internal         float64
	Hang             float64
	Malformed        float64
	Safety           float64
	Recitation       float64
	InvalidArgument  float64
	PermissionDenied float64
	SchemaMismatch   float64
}

// Rate returns the probability of fault o (0 for OK and Aborted).
func (f *FaultRates) Rate(o Outcome) float64 {
	if p := f.field(o); p != nil {
		return *p
	}
	return 0
}

// Set sets the probability of fault o.
func (f *FaultRates) Set(o Outcome, p float64) error {
	ptr := f.field(o)
	if ptr == nil {
		return fmt.Errorf("%w: %s is not a fault", ErrInvalidConfig, o)
	}
	*ptr = p
	return nil
}

func (f *FaultRates) field(o Outcome) *float64 {
	switch o {
	case OutcomeRateLimited:
		return &f.RateLimited
	case OutcomeDailyQuota:
		return &f.DailyQuota
	case OutcomeUnavailable:
		return &f.Unavailable
	case OutcomeInternal:
		return &f.Internal
	case OutcomeHang:
		return &f.Hang
	case OutcomeMalformed:
		return &f.Malformed
	case OutcomeSafety:
		return &f.Safety
	case OutcomeRecitation:
		return &f.Recitation
	case OutcomeInvalidArgument:
		return &f.InvalidArgument
	case OutcomePermissionDenied:
		return &f.PermissionDenied
	case OutcomeSchemaMismatch:
		return &f.SchemaMismatch
	}
	return nil
}

// Total returns the sum of the probabilities.
func (f *FaultRates) Total() float64 {
	var sum float64
	for _, o := range Outcomes() {
		sum += f.Rate(o)
	}
	return sum
}

// ParseFaultRates parses a comma-separated list of name=probability, e.g.
// "rate_limited_429=0.05,malformed=0.01", with the names Outcome.String
// gives. An empty string gives no faults.
func ParseFaultRates(s string) (FaultRates, error) {
	var f FaultRates
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		if !ok {
			return FaultRates{}, fmt.Errorf("%w: %q is not name=probability", ErrInvalidConfig, item)
		}
		o, err := ParseOutcome(strings.TrimSpace(name))
		if err != nil {
			return FaultRates{}, err
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return FaultRates{}, fmt.Errorf("%w: probability of %s: %w", ErrInvalidConfig, o, err)
		}
		if err := f.Set(o, p); err != nil {
			return FaultRates{}, err
		}
	}
	return f, nil
}

// Validate says, in plain words, what is wrong with c, or returns nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.LatencyBase < 0 || c.LatencyPerPage < 0 || c.LatencyJitter < 0 {
		bad("latencies must not be negative (base %s, per page %s, jitter %s)", c.LatencyBase, c.LatencyPerPage, c.LatencyJitter)
	}
	for _, o := range Outcomes() {
		p := c.Faults.Rate(o)
		if math.IsNaN(p) || p < 0 || p > 1 {
			bad("the probability of %s must be between 0 and 1 (got %v)", o, p)
		}
	}
	if t := c.Faults.Total(); t > 1+1e-9 {
		bad("the fault probabilities add up to %v, more than 1", t)
	}
	if c.FailFirst < 0 {
		bad("FailFirst must not be negative (got %d)", c.FailFirst)
	}
	if c.FailFirst > 0 && !c.FailFirstKind.IsFault() {
		bad("FailFirstKind must be a fault when FailFirst is set (got %s)", c.FailFirstKind)
	}
	if c.MaxConcurrent < 0 {
		bad("MaxConcurrent must not be negative (got %d)", c.MaxConcurrent)
	}
	if c.RPM < 0 {
		bad("RPM must not be negative (got %d)", c.RPM)
	}
	if c.RetryDelay < 0 {
		bad("RetryDelay must not be negative (got %s)", c.RetryDelay)
	}
	if c.MaxRequestBytes < 0 || c.MaxFileBytes < 0 || c.MaxPages < 0 || c.TokensPerPage < 0 {
		bad("limits must not be negative (request bytes %d, file bytes %d, pages %d, tokens per page %d)",
			c.MaxRequestBytes, c.MaxFileBytes, c.MaxPages, c.TokensPerPage)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with each zero field that stands for a default set
// to it.
func (c Config) withDefaults() Config {
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxPages == 0 {
		c.MaxPages = DefaultMaxPages
	}
	if c.TokensPerPage == 0 {
		c.TokensPerPage = DefaultTokensPerPage
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
