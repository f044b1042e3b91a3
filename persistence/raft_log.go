package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quirehq/quire/messages"
)

// RaftLog is hashicorp/raft's log store and stable store on the Store's
// database: log entries under raft/log/<index> (RaftLogEntry), the stable
// store's keys under raft/stable/<key> (keys.go). Every write is a Batch
// committed with Sync before it returns, so a full disk answers
// ErrInsufficientStorage as every other write does. The Store owns the
// database: a RaftLog needs no closing.
type RaftLog struct{ s *Store }

var (
	_ raft.LogStore    = (*RaftLog)(nil)
	_ raft.StableStore = (*RaftLog)(nil)
)

// RaftLog returns the store's Raft log and stable store.
func (s *Store) RaftLog() *RaftLog { return &RaftLog{s: s} }

// errStableNotFound is what Get and GetUint64 answer for a key never set.
// hashicorp/raft tells a fresh store from a failed one by the text of the
// error alone (err.Error() != "not found" in NewRaft, HasExistingState and
// requestVote; raft-boltdb's ErrKeyNotFound says the same), so the text is
// exactly "not found"; errors.Is(err, ErrNotFound) holds too.
var errStableNotFound error = stableNotFound{}

type stableNotFound struct{}

func (stableNotFound) Error() string        { return "not found" }
func (stableNotFound) Is(target error) bool { return target == ErrNotFound }

// FirstIndex is the index of the first entry of the log, 0 when it is empty.
func (l *RaftLog) FirstIndex() (uint64, error) { return l.edgeIndex(false) }

// LastIndex is the index of the last entry of the log, 0 when it is empty.
func (l *RaftLog) LastIndex() (uint64, error) { return l.edgeIndex(true) }

// edgeIndex seeks to the first (or last) key of the log and stops there:
// no scan of the log.
func (l *RaftLog) edgeIndex(last bool) (uint64, error) {
	var index uint64
	err := l.s.scan(raftLogPrefix, last, func(key, _ []byte) (bool, error) {
		var err error
		index, err = raftLogIndex(key)
		return false, err
	})
	return index, err
}

// raftLogIndex is the index in a raft/log/ key.
func raftLogIndex(key []byte) (uint64, error) {
	if len(key) != len(raftLogPrefix)+8 {
		return 0, fmt.Errorf("%w: raft log key %q", ErrCorrupt, key)
	}
	return binary.BigEndian.Uint64(key[len(raftLogPrefix):]), nil
}

// GetLog reads the entry at index into log; raft.ErrLogNotFound (itself,
// not wrapped: raft compares with ==) when there is none.
func (l *RaftLog) GetLog(index uint64, log *raft.Log) error {
	var e messages.RaftLogEntry
	err := l.s.getProto(raftLogKey(index), &e)
	if errors.Is(err, ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	if e.GetIndex() != index {
		return fmt.Errorf("%w: raft log entry %d stored at index %d", ErrCorrupt, e.GetIndex(), index)
	}
	if e.GetType() > math.MaxUint8 {
		return fmt.Errorf("%w: raft log entry %d has type %d", ErrCorrupt, index, e.GetType())
	}
	*log = raft.Log{
		Index:      e.GetIndex(),
		Term:       e.GetTerm(),
		Type:       raft.LogType(e.GetType()),
		Data:       e.GetData(),
		Extensions: e.GetExtensions(),
	}
	if ns := e.GetAppendedAtUnixNanos(); ns != 0 {
		log.AppendedAt = time.Unix(0, ns)
	}
	return nil
}

// StoreLog writes one entry, durably.
func (l *RaftLog) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// StoreLogs writes entries in one batch: all of them durably, or none.
func (l *RaftLog) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	b := l.s.NewBatch()
	for _, log := range logs {
		e := &messages.RaftLogEntry{
			Index:      log.Index,
			Term:       log.Term,
			Type:       uint32(log.Type),
			Data:       log.Data,
			Extensions: log.Extensions,
		}
		if !log.AppendedAt.IsZero() {
			e.AppendedAtUnixNanos = log.AppendedAt.UnixNano()
		}
		b.setProto(raftLogKey(log.Index), e)
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("persistence: store raft log entries %d..%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	return nil
}

// DeleteRange removes the entries from min to max, both included, durably,
// with one range tombstone.
func (l *RaftLog) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	end := prefixEnd(raftLogPrefix)
	if max < math.MaxUint64 {
		end = raftLogKey(max + 1)
	}
	b := l.s.NewBatch()
	b.deleteRange(raftLogKey(min), end)
	if err := b.Commit(); err != nil {
		return fmt.Errorf("persistence: delete raft log entries %d..%d: %w", min, max, err)
	}
	return nil
}

// Set stores val under key, durably.
func (l *RaftLog) Set(key, val []byte) error {
	b := l.s.NewBatch()
	b.set(raftStableKey(key), val)
	if err := b.Commit(); err != nil {
		return fmt.Errorf("persistence: set raft %q: %w", key, err)
	}
	return nil
}

// Get returns the value of key; an error saying "not found" when key was
// never set (errStableNotFound).
func (l *RaftLog) Get(key []byte) ([]byte, error) {
	v, err := l.s.getRaw(raftStableKey(key))
	if errors.Is(err, ErrNotFound) {
		return nil, errStableNotFound
	}
	return v, err
}

// SetUint64 stores val under key (8 bytes big-endian), durably.
func (l *RaftLog) SetUint64(key []byte, val uint64) error {
	return l.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value SetUint64 stored under key; 0 and an error
// saying "not found" when key was never set (errStableNotFound).
func (l *RaftLog) GetUint64(key []byte) (uint64, error) {
	v, err := l.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: raft %q is %d bytes, not a uint64", ErrCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
