package fakegemini

import (
	"fmt"
)

// Outcome is how the fake answered one generateContent request, or, for a
// fault, how it was told to answer. Its text form (String, MarshalText) is
// the name used in /stats and in command-line flags.
type Outcome int

// The outcomes. OutcomeOK is the zero value.
const (
	// OutcomeOK is a normal answer: finishReason STOP and the expected text.
	OutcomeOK Outcome = iota
	// OutcomeRateLimited is a 429 RESOURCE_EXHAUSTED for a per-minute quota,
	// with RetryInfo and a Retry-After header. The concurrency cap and the
	// requests-per-minute quota answer with it too.
	OutcomeRateLimited
	// OutcomeDailyQuota is a 429 RESOURCE_EXHAUSTED for the per-day quota:
	// no RetryInfo, no Retry-After; waiting a few seconds does not help.
	OutcomeDailyQuota
	// OutcomeUnavailable is a 503 UNAVAILABLE ("The model is overloaded").
	OutcomeUnavailable
	// OutcomeInternal is a 500 INTERNAL.
	OutcomeInternal
	// OutcomeHang never answers: the request waits until the client gives
	// up (then it also counts as OutcomeAborted) or the Server is closed.
	OutcomeHang
	// OutcomeMalformed is a 200 with finishReason STOP whose text is not
	// valid JSON (truncated, or wrapped in a markdown fence).
	OutcomeMalformed
	// OutcomeSafety is a 200 whose candidate has finishReason SAFETY, no
	// content and safety ratings with one category blocked.
	OutcomeSafety
	// OutcomeRecitation is a 200 whose candidate has finishReason RECITATION,
	// no content and citation metadata.
	OutcomeRecitation
	// OutcomeInvalidArgument is a 400 INVALID_ARGUMENT. Requests the fake
	// cannot accept (bad JSON, unknown file, too large) get it too.
	OutcomeInvalidArgument
	// OutcomePermissionDenied is a 403 PERMISSION_DENIED.
	OutcomePermissionDenied
	// OutcomeSchemaMismatch is a 200 with valid JSON that does not satisfy
	// the requested schema (a required property missing or of the wrong type).
	OutcomeSchemaMismatch
	// OutcomeAborted is not injected: it counts requests whose client went
	// away before the answer.
	OutcomeAborted

	numOutcomes = int(OutcomeAborted) + 1
)

var outcomeNames = [numOutcomes]string{
	OutcomeOK:               "ok",
	OutcomeRateLimited:      "rate_limited_429",
	OutcomeDailyQuota:       "daily_quota_429",
	OutcomeUnavailable:      "unavailable_503",
	OutcomeInternal:         "internal_500",
	OutcomeHang:             "hang",
	OutcomeMalformed:        "malformed",
	OutcomeSafety:           "safety",
	OutcomeRecitation:       "recitation",
	OutcomeInvalidArgument:  "invalid_400",
	OutcomePermissionDenied: "denied_403",
	OutcomeSchemaMismatch:   "schema_mismatch",
	OutcomeAborted:          "aborted",
}

// Outcomes lists every outcome in declaration order.
func Outcomes() []Outcome {
	out := make([]Outcome, numOutcomes)
	for i := range out {
		out[i] = Outcome(i)
	}
	return out
}

// String returns the outcome's name as /stats shows it, e.g. "rate_limited_429".
func (o Outcome) String() string {
	if o < 0 || int(o) >= numOutcomes {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// IsFault reports whether o can be injected (every outcome but OK and Aborted).
func (o Outcome) IsFault() bool {
	return o > OutcomeOK && o < OutcomeAborted
}

// ParseOutcome returns the outcome named name (as String returns it).
func ParseOutcome(name string) (Outcome, error) {
	for i, n := range outcomeNames {
		if n == name {
			return Outcome(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownOutcome, name)
}

// MarshalText returns the outcome's name, so that maps keyed by Outcome
// encode to JSON objects keyed by name.
func (o Outcome) MarshalText() ([]byte, error) {
	if o < 0 || int(o) >= numOutcomes {
		return nil, fmt.Errorf("%w: %d", ErrUnknownOutcome, int(o))
	}
	return []byte(outcomeNames[o]), nil
}

// UnmarshalText parses a name written by MarshalText.
func (o *Outcome) UnmarshalText(b []byte) error {
	v, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}
