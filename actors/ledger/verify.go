package ledger

import (
	"errors"
	"fmt"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// Verify recomputes every account's balance from its entries and checks the
// invariants of the ledger. It returns nil, or an error wrapping
// ErrDiscrepancy that lists every difference found.
func Verify(store *persistence.Store) error {
	problems, err := Discrepancies(store)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrDiscrepancy, errors.Join(problems...))
	}
	return nil
}

// Discrepancies is Verify's check: one error per account or job that does not
// balance, none when the ledger is sound. The scan is not one snapshot: run
// while the LedgerActor writes, it may see a movement's entries without its
// balance; a caller rules that out by reading the store's LedgerSeq before
// and after, and trusting only a scan during which it did not move.
func Discrepancies(store *persistence.Store) ([]error, error) {
	bals, err := store.Balances()
	if err != nil {
		return nil, err
	}
	// A store from before Balance.active_jobs has no counts yet: the ledger
	// counts them when it loads (countActiveJobs).
	counted, err := store.ActiveJobsCounted()
	if err != nil {
		return nil, err
	}
	var problems []error
	for id, bal := range bals {
		entries, err := store.LedgerEntries(id, false, 0)
		if err != nil {
			return nil, err
		}
		var granted, charged, reserved int64
		type jobSum struct{ reserve, charge, refund int64 }
		jobs := map[string]*jobSum{}
		for _, e := range entries {
			j := jobs[e.GetJobId()]
			if j == nil && e.GetJobId() != "" {
				j = &jobSum{}
				jobs[e.GetJobId()] = j
			}
			switch e.GetKind() {
			case messages.LedgerKind_LEDGER_KIND_GRANT:
				granted += e.GetAmount()
			case messages.LedgerKind_LEDGER_KIND_RESERVE:
				reserved += e.GetAmount()
				j.reserve += e.GetAmount()
			case messages.LedgerKind_LEDGER_KIND_CHARGE:
				charged += e.GetAmount()
				reserved -= e.GetAmount()
				j.charge += e.GetAmount()
			case messages.LedgerKind_LEDGER_KIND_REFUND:
				reserved -= e.GetAmount()
				j.refund += e.GetAmount()
			}
		}
		if active := OpenReservations(entries); counted && active != bal.GetActiveJobs() {
			problems = append(problems, fmt.Errorf("account %s: stored active jobs %d, entries say %d (reservations not settled)",
				id, bal.GetActiveJobs(), active))
		}
		if granted != bal.GetGranted() || charged != bal.GetCharged() || reserved != bal.GetReserved() {
			problems = append(problems, fmt.Errorf("account %s: stored granted/charged/reserved %d/%d/%d, entries say %d/%d/%d",
				id, bal.GetGranted(), bal.GetCharged(), bal.GetReserved(), granted, charged, reserved))
		}
		if Available(bal) < 0 || bal.GetReserved() < 0 {
			problems = append(problems, fmt.Errorf("account %s: negative available or reserved: %v", id, bal))
		}
		for job, j := range jobs {
			settled := j.charge+j.refund > 0
			if settled && j.charge+j.refund != j.reserve {
				problems = append(problems, fmt.Errorf("job %s: reserved %d != charged %d + refunded %d", job, j.reserve, j.charge, j.refund))
			}
		}
	}
	return problems, nil
}
