package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
)

// Balances loads every account's balance.
func (s *Store) Balances() (map[string]*messages.Balance, error) {
	out := map[string]*messages.Balance{}
	err := s.scan(balancePrefix, false, func(k, v []byte) (bool, error) {
		b := &messages.Balance{}
		if err := proto.Unmarshal(v, b); err != nil {
			return false, fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
		}
		out[b.GetAccountId()] = b
		return true, nil
	})
	return out, err
}

// Balance loads one account's balance.
func (s *Store) Balance(account string) (*messages.Balance, error) {
	b := &messages.Balance{}
	return b, s.getProto(balanceKey(account), b)
}

// LedgerEntries returns an account's entries, oldest first (newest first with
// reverse), at most limit of them (0: all).
func (s *Store) LedgerEntries(account string, reverse bool, limit int) ([]*messages.LedgerEntry, error) {
	var out []*messages.LedgerEntry
	err := s.scan(ledgerPrefix(account), reverse, func(k, v []byte) (bool, error) {
		e := &messages.LedgerEntry{}
		if err := proto.Unmarshal(v, e); err != nil {
			return false, fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
		}
		out = append(out, e)
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

// JobLedgerEntry returns the job's movement of the given kind, or ErrNotFound.
func (s *Store) JobLedgerEntry(job string, kind messages.LedgerKind) (*messages.LedgerEntry, error) {
	e := &messages.LedgerEntry{}
	return e, s.getProto(ledgerJobKey(job, kind), e)
}

// GrantLedgerEntry returns the grant with that id, or ErrNotFound.
func (s *Store) GrantLedgerEntry(account, grant string) (*messages.LedgerEntry, error) {
	e := &messages.LedgerEntry{}
	return e, s.getProto(ledgerGrantKey(account, grant), e)
}

// LedgerSeq is the sequence number of the newest ledger entry (0 if none).
func (s *Store) LedgerSeq() (int64, error) { return s.counter(ledgerSeqKey) }

// AccountSeq is the number of the newest account (0 if none).
func (s *Store) AccountSeq() (int64, error) { return s.counter(accountSeqKey) }

// LedgerApplied is the index of the last log entry whose ledger command
// changed the state (0 if none).
func (s *Store) LedgerApplied() (uint64, error) {
	n, err := s.counter(ledgerAppliedKey)
	return uint64(n), err
}

func (s *Store) counter(key []byte) (int64, error) {
	db, done, err := s.reader()
	if err != nil {
		return 0, err
	}
	defer done()
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("persistence: get %q: %w", key, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %q has %d bytes", ErrCorrupt, key, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Account loads an account, or ErrNotFound.
func (s *Store) Account(id string) (*messages.Account, error) {
	a := &messages.Account{}
	return a, s.getProto(accountKey(id), a)
}

// Accounts lists every account.
func (s *Store) Accounts() ([]*messages.Account, error) {
	var out []*messages.Account
	err := s.scan(accountPrefix, false, func(k, v []byte) (bool, error) {
		a := &messages.Account{}
		if err := proto.Unmarshal(v, a); err != nil {
			return false, fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
		}
		out = append(out, a)
		return true, nil
	})
	return out, err
}

// APIKeyByHash finds the key record stored under the SHA-256 of a key.
func (s *Store) APIKeyByHash(sum []byte) (*messages.APIKey, error) {
	k := &messages.APIKey{}
	return k, s.getProto(apiKeyKey(sum), k)
}

// Idempotency loads the record of an account's idempotency key, or ErrNotFound.
func (s *Store) Idempotency(account, key string) (*messages.IdempotencyRecord, error) {
	r := &messages.IdempotencyRecord{}
	return r, s.getProto(idemKey(account, key), r)
}
