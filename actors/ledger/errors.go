package ledger

import (
	"errors"
	"fmt"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// Errors of the ledger.
var (
	// ErrInsufficientCredits means the account cannot cover a reservation.
	ErrInsufficientCredits = errors.New("ledger: insufficient credits")
	// ErrUnknownAccount means no account has that id.
	ErrUnknownAccount = errors.New("ledger: unknown account")
	// ErrInvalid means the request breaks a rule (a negative amount, a settlement
	// that does not add up to its reservation): a bug in the caller.
	ErrInvalid = errors.New("ledger: invalid request")
	// ErrStorage means the movement could not be made durable; nothing moved.
	ErrStorage = errors.New("ledger: storage failure")
	// ErrUnauthorized means no live API key has that hash.
	ErrUnauthorized = errors.New("ledger: unknown or revoked API key")
	// ErrUnavailable means the ledger did not answer in time.
	ErrUnavailable = errors.New("ledger: unavailable")
	// ErrNoLeaderSoon, wrapped in a resolver's error, means no leader is
	// expected soon (the node's store takes no writes, so its Raft group
	// cannot run): the client does not wait for one, and reads go to the
	// local replica at once.
	ErrNoLeaderSoon = errors.New("ledger: no leader expected soon")
	// ErrDiscrepancy means the stored balances do not match the entries.
	ErrDiscrepancy = errors.New("ledger: discrepancy")
	// ErrTooManyActiveJobs means the account already has as many unfinished
	// jobs as its limit allows; nothing was reserved.
	ErrTooManyActiveJobs = errors.New("ledger: too many active jobs")
	// ErrConflict means the request collides with another one, e.g. an
	// Idempotency-Key that already made another job.
	ErrConflict = errors.New("ledger: conflict")
)

func codeError(code messages.LedgerError_Code, msg string) *messages.LedgerError {
	return &messages.LedgerError{Code: code, Message: msg}
}

// asError turns a LedgerError reply into a Go error wrapping a sentinel.
func asError(e *messages.LedgerError) error {
	var base error
	switch e.GetCode() {
	case messages.LedgerError_CODE_INSUFFICIENT_CREDITS:
		base = ErrInsufficientCredits
	case messages.LedgerError_CODE_UNKNOWN_ACCOUNT:
		base = ErrUnknownAccount
	case messages.LedgerError_CODE_STORAGE:
		base = ErrStorage
	case messages.LedgerError_CODE_INSUFFICIENT_STORAGE:
		return fmt.Errorf("%w: %w: %s", ErrStorage, persistence.ErrInsufficientStorage, e.GetMessage())
	case messages.LedgerError_CODE_UNAUTHORIZED:
		return ErrUnauthorized
	case messages.LedgerError_CODE_TOO_MANY_ACTIVE_JOBS:
		base = ErrTooManyActiveJobs
	case messages.LedgerError_CODE_CONFLICT:
		base = ErrConflict
	case messages.LedgerError_CODE_UNAVAILABLE:
		base = ErrUnavailable
	default:
		base = ErrInvalid
	}
	return fmt.Errorf("%w: %s", base, e.GetMessage())
}
