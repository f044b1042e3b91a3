package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// runKey is present while a process uses the store: BeginRun writes it,
// EndRun (a clean shutdown) removes it. Found at BeginRun, it says the
// process before ended without a clean shutdown: it crashed.
var runKey = []byte("meta/running")

// BeginRun records, durably, that a process started using the store at
// startedAt, and reports whether the process before it crashed (it never
// called EndRun).
func (s *Store) BeginRun(startedAt time.Time) (crashed bool, err error) {
	_, err = s.getRaw(runKey)
	switch {
	case err == nil:
		crashed = true
	case !errors.Is(err, ErrNotFound):
		return false, err
	}
	b := s.NewBatch()
	b.set(runKey, binary.BigEndian.AppendUint64(nil, uint64(startedAt.UnixMilli())))
	if err := b.Commit(); err != nil {
		return crashed, fmt.Errorf("persistence: set %q: %w", runKey, err)
	}
	return crashed, nil
}

// EndRun records that the process stops cleanly: nothing of it writes to
// the store any more.
func (s *Store) EndRun() error {
	b := s.NewBatch()
	b.del(runKey)
	if err := b.Commit(); err != nil {
		return fmt.Errorf("persistence: delete %q: %w", runKey, err)
	}
	return nil
}
