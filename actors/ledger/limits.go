package ledger

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// An account's own limits (messages.AccountLimits) are kept on its Account
// record; a zero field takes the node's default. The ledger enforces one of
// them itself, for the whole cluster: max_active_jobs, the number of the
// account's jobs whose reservation is not yet settled (Balance.active_jobs).
// The rate limits are applied by each node's API (per node).

// ValidateLimits says what is wrong with limits an admin asks for, or nil.
func ValidateLimits(l *messages.AccountLimits) error {
	var errs []error
	if rps := l.GetRequestsPerSecond(); rps < 0 || math.IsNaN(rps) || math.IsInf(rps, 0) {
		errs = append(errs, fmt.Errorf("requests_per_second must be a number >= 0 (got %v)", rps))
	}
	if l.GetBurst() < 0 {
		errs = append(errs, fmt.Errorf("burst must not be negative (got %d)", l.GetBurst()))
	}
	if l.GetMaxActiveJobs() < 0 {
		errs = append(errs, fmt.Errorf("max_active_jobs must not be negative (got %d)", l.GetMaxActiveJobs()))
	}
	return errors.Join(errs...)
}

// setLimits replaces an account's own limits.
func (a *Machine) setLimits(m *messages.SetLimits) any {
	if err := ValidateLimits(m.GetLimits()); err != nil {
		return codeError(messages.LedgerError_CODE_INVALID, err.Error())
	}
	acct, err := a.store.Account(m.GetAccountId())
	if errors.Is(err, persistence.ErrNotFound) {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, m.GetAccountId())
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	acct.Limits = nil
	if m.GetLimits() != nil {
		acct.Limits = proto.Clone(m.GetLimits()).(*messages.AccountLimits)
	}
	b := a.store.NewBatch()
	b.UpdateAccount(acct)
	if lerr := a.commit(b); lerr != nil {
		return lerr
	}
	a.log.Info("account limits set", "account", acct.GetId(), "requests_per_second", acct.GetLimits().GetRequestsPerSecond(),
		"burst", acct.GetLimits().GetBurst(), "max_active_jobs", acct.GetLimits().GetMaxActiveJobs())
	return &messages.AccountReply{Account: acct}
}

// checkActiveJobs refuses a new reservation when the account has as many
// unfinished jobs as its limit: its own max_active_jobs, else the node's
// default def (0: no limit).
func (a *Machine) checkActiveJobs(bal *messages.Balance, def int32) *messages.LedgerError {
	acct, err := a.store.Account(bal.GetAccountId())
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	limit := int64(def)
	if own := acct.GetLimits().GetMaxActiveJobs(); own > 0 {
		limit = int64(own)
	}
	if limit > 0 && bal.GetActiveJobs() >= limit {
		return codeError(messages.LedgerError_CODE_TOO_MANY_ACTIVE_JOBS,
			fmt.Sprintf("the account has %d unfinished jobs and its limit is %d; wait until one ends, or cancel one", bal.GetActiveJobs(), limit))
	}
	return nil
}

// countActiveJobs fills in the active_jobs of balances written before the
// field existed (the store lacks the mark of persistence.ActiveJobsCounted):
// once, from the entries, in one durable write with the mark.
func (a *Machine) countActiveJobs(bals map[string]*messages.Balance) error {
	counted, err := a.store.ActiveJobsCounted()
	if err != nil || counted {
		return err
	}
	b := a.store.NewBatch()
	for id, bal := range bals {
		entries, err := a.store.LedgerEntries(id, false, 0)
		if err != nil {
			b.Discard()
			return err
		}
		n := OpenReservations(entries)
		if n != bal.GetActiveJobs() {
			a.log.Info("counted the active jobs of an account", "account", id, "active_jobs", n)
			bal.ActiveJobs = n
			b.PutBalance(bal)
		}
	}
	b.MarkActiveJobsCounted()
	return b.Commit()
}

// OpenReservations counts the jobs among entries that have a reservation but
// no settlement (no charge entry): the account's active jobs.
func OpenReservations(entries []*messages.LedgerEntry) int64 {
	reserved := map[string]bool{}
	settled := map[string]bool{}
	for _, e := range entries {
		switch e.GetKind() {
		case messages.LedgerKind_LEDGER_KIND_RESERVE:
			reserved[e.GetJobId()] = true
		case messages.LedgerKind_LEDGER_KIND_CHARGE:
			settled[e.GetJobId()] = true
		}
	}
	var n int64
	for job := range reserved {
		if !settled[job] {
			n++
		}
	}
	return n
}
