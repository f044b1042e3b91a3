package persistence

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
)

// Batch gathers writes that must become durable together. Nothing in it is
// visible until Commit, which writes it atomically with Sync.
type Batch struct {
	s   *Store
	db  *pebble.DB // the one b was made on (the store may reopen its database)
	b   *pebble.Batch
	err error
}

// NewBatch starts an empty batch.
func (s *Store) NewBatch() *Batch {
	db, done, err := s.reader()
	if err != nil {
		return &Batch{s: s, err: err}
	}
	defer done()
	return &Batch{s: s, db: db, b: db.NewBatch()}
}

// CommitNoSync is Commit without waiting for the disk: for writes a
// durable log can make again after a crash (the state a Raft log applies).
func (b *Batch) CommitNoSync() error { return b.commit(pebble.NoSync) }

// Sync makes every write committed so far durable (CommitNoSync's too):
// the write-ahead log is one file, synced up to its end.
func (s *Store) Sync() error {
	b := s.NewBatch()
	if b.err != nil {
		return b.err
	}
	if err := b.b.LogData([]byte("sync"), nil); err != nil {
		b.Discard()
		return fmt.Errorf("persistence: sync: %w", err)
	}
	return b.Commit()
}

// Commit writes the batch durably (fsync) and releases it. After a commit
// failed for lack of space (then Pebble takes no more writes), it answers
// ErrInsufficientStorage (ErrReadOnly for another cause) without writing.
func (b *Batch) Commit() error { return b.commit(pebble.Sync) }

func (b *Batch) commit(opts *pebble.WriteOptions) error {
	if b.b == nil {
		return b.err
	}
	defer b.b.Close()
	if b.err != nil {
		return b.err
	}
	db, done, err := b.s.reader()
	if err != nil {
		return err
	}
	defer done()
	if err := b.s.writeFailure(); err != nil {
		return err
	}
	pb := b.b
	if db != b.db { // the store reopened its database since NewBatch
		pb = db.NewBatch()
		defer pb.Close()
		if err := pb.Apply(b.b, nil); err != nil {
			return fmt.Errorf("persistence: commit: %w", err)
		}
	}
	if err := pb.Commit(opts); err != nil {
		return noSpace(fmt.Errorf("persistence: commit: %w", err))
	}
	// Pebble reports a failed WAL write through its logger's Fatalf and then
	// returns nil (pebbleLogger); the store remembers it.
	return b.s.writeFailure()
}

// Discard releases the batch without writing it.
func (b *Batch) Discard() {
	if b.b != nil {
		_ = b.b.Close()
	}
}

func (b *Batch) setProto(key []byte, msg proto.Message) {
	if b.err != nil {
		return
	}
	v, err := proto.Marshal(msg)
	if err != nil {
		b.err = fmt.Errorf("persistence: encode %q: %w", key, err)
		return
	}
	if err := b.b.Set(key, v, nil); err != nil {
		b.err = fmt.Errorf("persistence: set %q: %w", key, err)
	}
}

func (b *Batch) set(key, value []byte) {
	if b.err != nil {
		return
	}
	if err := b.b.Set(key, value, nil); err != nil {
		b.err = fmt.Errorf("persistence: set %q: %w", key, err)
	}
}

func (b *Batch) del(key []byte) {
	if b.err != nil {
		return
	}
	if err := b.b.Delete(key, nil); err != nil {
		b.err = fmt.Errorf("persistence: delete %q: %w", key, err)
	}
}

// deleteRange removes every key in [start, end) with one range tombstone.
func (b *Batch) deleteRange(start, end []byte) {
	if b.err != nil {
		return
	}
	if err := b.b.DeleteRange(start, end, nil); err != nil {
		b.err = fmt.Errorf("persistence: delete [%q, %q): %w", start, end, err)
	}
}

// AppendJobEvent adds ev to its job's log at ev.Seq. A JobCreated event also
// indexes the job under its account and marks it active; a JobFinished event
// clears the active mark.
func (b *Batch) AppendJobEvent(ev *messages.JobEvent) {
	if ev.GetJobId() == "" || ev.GetSeq() <= 0 {
		b.err = fmt.Errorf("persistence: job event without job id or sequence: %v", ev)
		return
	}
	b.setProto(eventKey(ev.GetJobId(), ev.GetSeq()), ev)
	switch e := ev.GetEvent().(type) {
	case *messages.JobEvent_Created:
		b.set(activeKey(ev.GetJobId()), nil)
		b.set(jobIndexKey(e.Created.GetAccountId(), ev.GetJobId()), nil)
	case *messages.JobEvent_Finished:
		b.del(activeKey(ev.GetJobId()))
	}
}

// PutChunkOutput stores one chunk's output beside the job's log.
func (b *Batch) PutChunkOutput(job string, out *messages.ChunkOutput) {
	b.setProto(outputKey(job, out.GetIndex()), out)
}

// PutLedgerEntry records a credit movement and indexes it for idempotency.
func (b *Batch) PutLedgerEntry(e *messages.LedgerEntry) {
	b.setProto(ledgerKey(e.GetAccountId(), e.GetSeq()), e)
	switch {
	case e.GetKind() == messages.LedgerKind_LEDGER_KIND_GRANT && e.GetGrantId() != "":
		b.setProto(ledgerGrantKey(e.GetAccountId(), e.GetGrantId()), e)
	case e.GetJobId() != "":
		b.setProto(ledgerJobKey(e.GetJobId(), e.GetKind()), e)
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], uint64(e.GetSeq()))
	b.set(ledgerSeqKey, seq[:])
}

// PutLedgerApplied records index as the last log entry applied to the
// ledger, with the change it made.
func (b *Batch) PutLedgerApplied(index uint64) {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], index)
	b.set(ledgerAppliedKey, v[:])
}

// PutBalance stores an account's balance.
func (b *Batch) PutBalance(bal *messages.Balance) {
	b.setProto(balanceKey(bal.GetAccountId()), bal)
}

// PutAccount stores an account and advances the account counter to its number.
func (b *Batch) PutAccount(a *messages.Account) {
	b.setProto(accountKey(a.GetId()), a)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(a.GetNumber()))
	b.set(accountSeqKey, n[:])
}

// PutAPIKey stores an API key record under the hash of the key.
func (b *Batch) PutAPIKey(k *messages.APIKey) {
	b.setProto(apiKeyKey(k.GetSha256()), k)
}

// PutIdempotency stores an idempotency record.
func (b *Batch) PutIdempotency(r *messages.IdempotencyRecord) {
	b.setProto(idemKey(r.GetAccountId(), r.GetKey()), r)
}

// PutPending records a reservation asked of a remote ledger for a job not yet recorded.
func (b *Batch) PutPending(p *messages.PendingReservation) {
	b.setProto(pendingKey(p.GetJobId()), p)
}

// DeletePending removes a pending reservation (recorded or voided).
func (b *Batch) DeletePending(job string) { b.del(pendingKey(job)) }
