package persistence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// DefaultMinFreeBytes is the free space below which a store refuses new
// uploads (serve's --min-free-disk-mb, 512).
const DefaultMinFreeBytes = 512 << 20

// openReserveBytes is the free space, beyond the WALs to replay, that Pebble
// needs to open for writing (a new WAL, MANIFEST, OPTIONS).
const openReserveBytes = 8 << 20

// reopenWait is how long a read waits for the database to be reopened
// before it answers ErrReopening.
const reopenWait = 2 * time.Second

// spaceLogEvery is how often a full disk is logged again: once a minute,
// not once per refused request.
const spaceLogEvery = time.Minute

// isNoSpace says whether err is the file system saying it is out of space
// (ENOSPC) or out of quota (EDQUOT).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// noSpace turns an out-of-space error into ErrInsufficientStorage (keeping
// what it says); other errors are returned as they are.
func noSpace(err error) error {
	if err == nil || !isNoSpace(err) || errors.Is(err, ErrInsufficientStorage) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInsufficientStorage, err)
}

// CheckSpace says whether the store can take new work: ErrInsufficientStorage
// when the store has stopped writing (a write failed for lack of space) or
// when the data directory's file system has less free space than the
// store's floor (Options.MinFreeBytes). It costs one statfs.
func (s *Store) CheckSpace() error {
	if err := s.writeFailure(); err != nil {
		return err
	}
	if s.minFree <= 0 {
		return nil
	}
	du, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return fmt.Errorf("persistence: free space of %s: %w", s.dir, err)
	}
	if du.AvailBytes >= uint64(s.minFree) {
		return nil
	}
	err = fmt.Errorf("%w: %d MiB free on the data disk, below the floor of %d MiB", ErrInsufficientStorage, du.AvailBytes>>20, s.minFree>>20)
	s.logs.every("disk nearly full", func(dropped int) {
		s.log.Warn("disk nearly full: refusing new uploads", "dir", s.dir, "free_bytes", du.AvailBytes,
			"floor_bytes", s.minFree, "refused_since_last_log", dropped)
	})
	return err
}

// WritesRefused is the error every write answers now (the store opened
// read-only on a full disk, or a commit failed for lack of space), or nil.
func (s *Store) WritesRefused() error { return s.writeFailure() }

// writeFailure is the error every write answers after a commit failed for
// lack of space (Pebble cannot take writes again after that until it is
// reopened), or nil.
func (s *Store) writeFailure() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// failWrites makes every later write answer an error saying why:
// ErrInsufficientStorage when cause is about space, else ErrReadOnly. The
// first cause is kept. It reports whether this call was the first.
func (s *Store) failWrites(cause error) bool {
	sentinel := ErrReadOnly
	if isNoSpace(cause) {
		sentinel = ErrInsufficientStorage
	}
	err := fmt.Errorf("%w: the store stopped writing after %v; it takes writes again once the data disk has room", sentinel, cause)
	return s.failed.CompareAndSwap(nil, &err)
}

// reopenSoon asks the recheck loop to reopen the database now. After a
// failed commit Pebble takes no more writes, and its memtable holds the
// failed batch (readable, never durable): reopening drops it and, once the
// disk has room, takes writes again.
func (s *Store) reopenSoon() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// startRecheck starts the loop that reopens the database when asked
// (reopenSoon) and, while writes are refused, every recheckEvery once the
// disk has room to open for writing. Close stops it.
func (s *Store) startRecheck() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(s.recheckEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
				s.reopen()
			case <-tick.C:
				if s.writeFailure() == nil {
					continue
				}
				if _, _, room := s.roomToOpen(); room {
					s.reopen()
				}
			}
		}
	}()
}

// reopen closes the database and opens it again, for writing if the disk
// has room (openDB). It waits for the reads and writes in progress; new
// ones answer ErrReopening meanwhile (quiesce).
func (s *Store) reopen() {
	old := s.quiesce()
	wasFailed := s.writeFailure()
	if err := old.Close(); err != nil {
		s.log.Debug("close before reopening", "err", err.Error())
	}
	s.failed.Store(nil)
	db, err := s.openDB()
	if err != nil {
		// Not even read-only: nothing can be served from this store.
		panic(fmt.Errorf("persistence: reopen pebble in %s: %w", s.dir, err))
	}
	s.resume(db)
	if s.writeFailure() == nil && wasFailed != nil {
		s.log.Info("the data disk has room again: the store takes writes", "dir", s.dir)
	}
}

// rateLimitedLog runs a log call at most once per spaceLogEvery per key, and
// says how many calls it dropped in between.
type rateLimitedLog struct {
	mu      sync.Mutex
	now     func() time.Time
	last    map[string]time.Time
	dropped map[string]int
}

// every runs log if key was not logged in the last spaceLogEvery, telling it
// how many calls were dropped since the last one that ran.
func (r *rateLimitedLog) every(key string, log func(dropped int)) {
	r.mu.Lock()
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	if r.last == nil {
		r.last, r.dropped = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < spaceLogEvery {
		r.dropped[key]++
		r.mu.Unlock()
		return
	}
	r.last[key] = now
	dropped := r.dropped[key]
	r.dropped[key] = 0
	r.mu.Unlock()
	log(dropped)
}
