package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// runKey is present while a process uses the store: BeginRun writes it,
// EndRun (a clean shutdown) removes it. Found at BeginRun, it says the
// process before ended without a clean shutdown: it crashed.
var runKey = []byte("meta/running")

// BeginRun records, durably, that a process started using the store at
// startedAt, and reports whether the process before it crashed (it never
// called EndRun).
func (s *Store) BeginRun(startedAt time.Time) (crashed bool, err error) {
	_, closer, err := s.db.Get(runKey)
	switch {
	case err == nil:
		crashed = true
		_ = closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return false, fmt.Errorf("persistence: get %q: %w", runKey, err)
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(startedAt.UnixMilli()))
	if err := s.db.Set(runKey, v, pebble.Sync); err != nil {
		return crashed, fmt.Errorf("persistence: set %q: %w", runKey, err)
	}
	return crashed, nil
}

// EndRun records that the process stops cleanly: nothing of it writes to
// the store any more.
func (s *Store) EndRun() error {
	if err := s.db.Delete(runKey, pebble.Sync); err != nil {
		return fmt.Errorf("persistence: delete %q: %w", runKey, err)
	}
	return nil
}
