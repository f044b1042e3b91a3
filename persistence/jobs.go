package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
)

// AppendJobEvents appends events to a job's log durably. Callers give each
// event its sequence number; one job's log has one writer (its JobActor).
func (s *Store) AppendJobEvents(evs ...*messages.JobEvent) error {
	b := s.NewBatch()
	for _, ev := range evs {
		b.AppendJobEvent(ev)
	}
	return b.Commit()
}

// JobEvents returns a job's log in order; ErrNotFound if the job has none.
func (s *Store) JobEvents(job string) ([]*messages.JobEvent, error) {
	var evs []*messages.JobEvent
	err := s.scan(eventPrefix(job), false, func(k, v []byte) (bool, error) {
		ev := &messages.JobEvent{}
		if err := proto.Unmarshal(v, ev); err != nil {
			return false, fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
		}
		evs = append(evs, ev)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrNotFound
	}
	return evs, nil
}

// ChunkOutputs returns the stored outputs of a job, by chunk index.
func (s *Store) ChunkOutputs(job string) (map[int32]*messages.ChunkOutput, error) {
	outs := map[int32]*messages.ChunkOutput{}
	err := s.scan(outputPrefix(job), false, func(k, v []byte) (bool, error) {
		o := &messages.ChunkOutput{}
		if err := proto.Unmarshal(v, o); err != nil {
			return false, fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
		}
		outs[o.GetIndex()] = o
		return true, nil
	})
	return outs, err
}

// ActiveJobs is the recovery scan: the ids of every job that has been created
// and has not finished.
func (s *Store) ActiveJobs() ([]string, error) {
	var ids []string
	err := s.scan(activePrefix, false, func(k, _ []byte) (bool, error) {
		ids = append(ids, string(bytes.TrimPrefix(k, activePrefix)))
		return true, nil
	})
	return ids, err
}

// JobIDs lists an account's job ids, newest first, starting after the
// cursor (a job id; "" for the newest). fn returns false to stop.
func (s *Store) JobIDs(account, after string, fn func(job string) (bool, error)) error {
	prefix := jobIndexPrefix(account)
	return s.scan(prefix, true, func(k, _ []byte) (bool, error) {
		id := strings.TrimPrefix(string(k), string(prefix))
		if after != "" && id >= after {
			return true, nil
		}
		return fn(id)
	})
}

// PendingReservations lists the reservations asked of a remote ledger whose
// jobs were not recorded (yet).
func (s *Store) PendingReservations() ([]*messages.PendingReservation, error) {
	var out []*messages.PendingReservation
	err := s.scan(pendingPrefix, false, func(_, v []byte) (bool, error) {
		p := &messages.PendingReservation{}
		if err := proto.Unmarshal(v, p); err != nil {
			return false, fmt.Errorf("%w: pending reservation: %v", ErrCorrupt, err)
		}
		out = append(out, p)
		return true, nil
	})
	return out, err
}

// HasJob reports whether the store records the job (its first event).
func (s *Store) HasJob(job string) (bool, error) {
	db, done, err := s.reader()
	if err != nil {
		return false, err
	}
	defer done()
	_, closer, err := db.Get(eventKey(job, 1))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}
