package persistence

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quirehq/quire/messages"
)

// activeJobsCountedKey marks a store whose balances count their active jobs
// (Balance.active_jobs). A store written before that field existed lacks it:
// the ledger counts them from the entries once, and writes the mark with the
// counts.
var activeJobsCountedKey = []byte("meta/active_jobs_counted")

// ActiveJobsCounted reports whether the balances' active_jobs are kept.
func (s *Store) ActiveJobsCounted() (bool, error) {
	db, done, err := s.reader()
	if err != nil {
		return false, err
	}
	defer done()
	_, closer, err := db.Get(activeJobsCountedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("persistence: get %q: %w", activeJobsCountedKey, err)
	}
	closer.Close()
	return true, nil
}

// MarkActiveJobsCounted records that the balances' active_jobs are kept.
func (b *Batch) MarkActiveJobsCounted() { b.set(activeJobsCountedKey, nil) }

// UpdateAccount replaces an existing account's record (e.g. its limits). Unlike
// PutAccount it leaves the account counter alone.
func (b *Batch) UpdateAccount(a *messages.Account) {
	b.setProto(accountKey(a.GetId()), a)
}
