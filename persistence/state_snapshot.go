package persistence

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/quirehq/quire/messages"
)

// LedgerKeySpace is the ledger's part of the replicated state: what its
// Raft state machine writes, and what one of its snapshots holds.
var LedgerKeySpace = [][]byte{
	accountPrefix, apiKeyPrefix, []byte("acctkey/"), balancePrefix,
	[]byte("led/"), []byte("ledjob/"), []byte("ledgrant/"), idemPrefix,
	ledgerSeqKey, accountSeqKey, ledgerAppliedKey, activeJobsCountedKey, rolloutKey,
}

// StateSnapshot is a consistent view of part of the state, taken at one
// moment, to be written out while the state moves on.
type StateSnapshot struct {
	s        *Store
	snap     *pebble.Snapshot
	prefixes [][]byte
	done     func()
}

// SnapshotState takes a consistent view of the keys under prefixes. Close
// it when written.
func (s *Store) SnapshotState(prefixes [][]byte) (*StateSnapshot, error) {
	db, done, err := s.reader()
	if err != nil {
		return nil, err
	}
	return &StateSnapshot{s: s, snap: db.NewSnapshot(), prefixes: prefixes, done: done}, nil
}

// WriteTo writes every key of the view as a length-delimited StateRecord.
func (v *StateSnapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var n int64
	for _, p := range v.prefixes {
		it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return n, fmt.Errorf("persistence: snapshot %q: %w", p, err)
		}
		for valid := it.First(); valid; valid = it.Next() {
			val, err := it.ValueAndErr()
			if err != nil {
				_ = it.Close()
				return n, fmt.Errorf("persistence: snapshot %q: %w", it.Key(), err)
			}
			k, err := protodelim.MarshalTo(bw, &messages.StateRecord{Key: it.Key(), Value: val})
			n += int64(k)
			if err != nil {
				_ = it.Close()
				return n, err
			}
		}
		if err := it.Close(); err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// Close releases the view.
func (v *StateSnapshot) Close() error {
	err := v.snap.Close()
	v.done()
	return err
}

// RestoreState replaces every key under prefixes with the records r holds
// (written by StateSnapshot.WriteTo), in one durable write: a restore is
// whole or not at all. A record outside prefixes is refused.
func (s *Store) RestoreState(r io.Reader, prefixes [][]byte) error {
	b := s.NewBatch()
	if b.err != nil {
		return b.err
	}
	for _, p := range prefixes {
		if err := b.b.DeleteRange(p, prefixEnd(p), nil); err != nil {
			b.Discard()
			return fmt.Errorf("persistence: restore: %w", err)
		}
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		var rec messages.StateRecord
		err := protodelim.UnmarshalFrom(br, &rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Discard()
			return fmt.Errorf("%w: restore: %v", ErrCorrupt, err)
		}
		if !under(rec.GetKey(), prefixes) {
			b.Discard()
			return fmt.Errorf("%w: restore: key %q is not part of the state", ErrCorrupt, rec.GetKey())
		}
		b.set(rec.GetKey(), rec.GetValue())
	}
	return b.Commit()
}

func under(key []byte, prefixes [][]byte) bool {
	for _, p := range prefixes {
		if len(key) >= len(p) && string(key[:len(p)]) == string(p) {
			return true
		}
	}
	return false
}
