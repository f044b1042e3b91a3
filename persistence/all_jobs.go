package persistence

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// eventsPrefix is the start of every job's event log (ev/<job>/<seq>).
var eventsPrefix = []byte("ev/")

// AllJobIDs lists the ids of every job this store records, of every account,
// newest first (job ids are UUIDv7: they sort by time), starting after the
// cursor (a job id; "" for the newest). fn returns false to stop.
//
// It walks the event logs backwards and jumps from one job's log to the one
// before with a single seek, so a job costs one step whatever its number of
// events.
func (s *Store) AllJobIDs(after string, fn func(job string) (bool, error)) error {
	db, done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: eventsPrefix, UpperBound: prefixEnd(eventsPrefix)})
	if err != nil {
		return fmt.Errorf("persistence: iterate job logs: %w", err)
	}
	defer it.Close()
	var valid bool
	if after == "" {
		valid = it.Last()
	} else {
		valid = it.SeekLT(eventPrefix(after))
	}
	for valid {
		rest := bytes.TrimPrefix(it.Key(), eventsPrefix)
		end := bytes.IndexByte(rest, '/')
		if end <= 0 {
			return fmt.Errorf("%w: job log key %q", ErrCorrupt, it.Key())
		}
		id := string(rest[:end])
		more, err := fn(id)
		if err != nil || !more {
			return err
		}
		valid = it.SeekLT(eventPrefix(id))
	}
	return it.Error()
}
