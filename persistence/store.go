package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"
)

// Errors of the store.
var (
	// ErrNotFound means the key asked for is not stored.
	ErrNotFound = errors.New("persistence: not found")
	// ErrUploadTooLarge means an upload went over its size limit while streaming.
	ErrUploadTooLarge = errors.New("persistence: upload too large")
	// ErrCorrupt means a stored value could not be decoded: a bug or a damaged disk.
	ErrCorrupt = errors.New("persistence: corrupt value")
	// ErrClusterIDSet means the store already belongs to another cluster.
	ErrClusterIDSet = errors.New("persistence: cluster id already set")
	// ErrInsufficientStorage means a write was refused or failed for lack of
	// disk space (ENOSPC, EDQUOT, or free space below the store's floor).
	ErrInsufficientStorage = errors.New("persistence: insufficient storage")
	// ErrReadOnly means the store takes no writes: a commit failed for a
	// reason other than space, and Pebble takes none after that.
	ErrReadOnly = errors.New("persistence: store is read-only")
	// ErrReopening means the store is reopening its database (for a few
	// milliseconds, after a failed write or when space is back) or is closed:
	// try again.
	ErrReopening = errors.New("persistence: store is reopening")
)

// Options tune a store. The zero value is valid: no free-space floor, the
// operating system's file system.
type Options struct {
	// MinFreeBytes is the free space on the data directory's file system
	// below which CheckSpace refuses new work (0: no floor).
	MinFreeBytes int64
	// FS is the file system Pebble writes through and free space is read
	// from (default vfs.Default); tests wrap it to inject faults.
	FS vfs.FS
	// RecheckEvery is how often a store that stopped writing checks whether
	// the disk has room again (default 5s).
	RecheckEvery time.Duration
}

// Validate says what is wrong with o, in plain words.
func (o Options) Validate() error {
	if o.MinFreeBytes < 0 {
		return fmt.Errorf("persistence: the free space floor must not be negative (got %d bytes)", o.MinFreeBytes)
	}
	if o.RecheckEvery < 0 {
		return fmt.Errorf("persistence: the free space recheck interval must not be negative (got %s)", o.RecheckEvery)
	}
	return nil
}

// Store is one node's durable state: Pebble under dir/db, blobs under
// dir/blobs, uploads in progress under dir/tmp.
type Store struct {
	// mu guards db and the count of its users (reader). While the
	// database is reopened (after a failed write, or when space is back)
	// or closed, new users are refused with ErrReopening and the reopen
	// waits for the count to drop to zero.
	mu struct {
		sync.Mutex
		db        *pebble.DB
		users     int
		reopening bool
		idle      sync.Cond     // signalled when users drops to zero while reopening
		reopened  chan struct{} // closed when the reopen ends
	}
	dir   string
	blobs string
	cache string
	tmp   string
	log   *slog.Logger
	fs    vfs.FS
	// minFree is the free-space floor of CheckSpace, in bytes.
	minFree int64
	// failed is set once a commit failed: Pebble takes no write after that.
	failed atomic.Pointer[error]
	// logs keeps repeated conditions (a full disk) to one line a minute.
	logs rateLimitedLog
	// recheckEvery, kick, stop and wg run the loop that reopens the
	// database after a failed write and when space is back (space.go).
	recheckEvery time.Duration
	kick         chan struct{}
	stop         context.CancelFunc
	wg           sync.WaitGroup
	// fetches makes concurrent fetches of one job's PDF from another node one.
	fetches singleflight.Group
}

// Open opens (or creates) the store in dir. Uploads left in dir/tmp by a
// previous process are removed: an upload that was not turned into a job
// before a crash was never acknowledged.
func Open(dir string, log *slog.Logger) (*Store, error) {
	return OpenWith(dir, log, Options{})
}

// OpenWith is Open with options. On a disk too full for Pebble to open for
// writing, the store opens read-only: it serves reads and every write answers
// ErrInsufficientStorage.
func OpenWith(dir string, log *slog.Logger, o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.RecheckEvery == 0 {
		o.RecheckEvery = 5 * time.Second
	}
	s := &Store{
		dir:     dir,
		blobs:   filepath.Join(dir, "blobs"),
		cache:   filepath.Join(dir, "cache"),
		tmp:     filepath.Join(dir, "tmp"),
		log:     log,
		fs:      o.FS,
		minFree: o.MinFreeBytes,

		recheckEvery: o.RecheckEvery,
		kick:         make(chan struct{}, 1),
	}
	// Copies of other nodes' PDFs are fetched again when needed.
	if err := os.RemoveAll(s.cache); err != nil {
		return nil, fmt.Errorf("persistence: clean cache: %w", err)
	}
	for _, d := range []string{dir, s.blobs, s.cache, s.tmp} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("persistence: create %s: %w", d, err)
		}
	}
	if err := s.cleanTmp(); err != nil {
		return nil, err
	}
	db, err := s.openDB()
	if err != nil {
		return nil, fmt.Errorf("persistence: open pebble in %s: %w", dir, err)
	}
	s.mu.db = db
	s.mu.idle.L = &s.mu.Mutex
	s.startRecheck()
	return s, nil
}

// reader returns the database for one read or write, and the func that
// ends the use; the database is not reopened in between. While it is
// being reopened, it waits for the reopen up to reopenWait, then answers
// ErrReopening: a read made inside another (a scan's callback) holds the
// reopen up, and waiting longer would deadlock them.
func (s *Store) reader() (*pebble.DB, func(), error) {
	timeout := time.NewTimer(reopenWait)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		if !s.mu.reopening {
			s.mu.users++
			db := s.mu.db
			s.mu.Unlock()
			return db, s.release, nil
		}
		reopened := s.mu.reopened
		s.mu.Unlock()
		select {
		case <-reopened:
		case <-timeout.C:
			return nil, nil, ErrReopening
		}
	}
}

func (s *Store) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.users--
	if s.mu.users == 0 && s.mu.reopening {
		s.mu.idle.Broadcast()
	}
}

// quiesce refuses new users of the database and waits until the current
// ones are done; it returns the database, to close.
func (s *Store) quiesce() *pebble.DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.reopening, s.mu.reopened = true, make(chan struct{})
	for s.mu.users > 0 {
		s.mu.idle.Wait()
	}
	return s.mu.db
}

// resume lets users in again, onto db.
func (s *Store) resume(db *pebble.DB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.db, s.mu.reopening = db, false
	close(s.mu.reopened)
}

// openDB opens Pebble for writing when the disk has room for it, else
// read-only, with every write refused. Opening for writing writes (a new
// WAL, MANIFEST and OPTIONS, and the flush of the WAL it replays); on a
// disk without room for them Pebble retries its failed MANIFEST write for
// ever (a spinning, silent node). Reading writes nothing.
func (s *Store) openDB() (*pebble.DB, error) {
	need, free, room := s.roomToOpen()
	err := fmt.Errorf("%d MiB free, %d MiB needed to open for writing: %w", free>>20, need>>20, syscall.ENOSPC)
	if room {
		db, oerr := s.openPebble(false)
		if oerr == nil || !isNoSpace(oerr) {
			return db, oerr
		}
		err = oerr
	}
	s.logs.every("open read-only", func(int) {
		s.log.Error("disk full: the store is open read-only; writes are refused until the disk has room", "dir", s.dir, "err", err.Error())
	})
	s.failWrites(err)
	return s.openPebble(true)
}

// roomToOpen says whether the data disk has room to open Pebble for
// writing: the size of the WALs it would replay and flush, plus
// openReserveBytes. It returns what is needed and what is free.
func (s *Store) roomToOpen() (need, free uint64, ok bool) {
	need = openReserveBytes
	if entries, err := os.ReadDir(filepath.Join(s.dir, "db")); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && filepath.Ext(e.Name()) == ".log" {
				need += uint64(info.Size())
			}
		}
	}
	du, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return need, 0, true // not known: let Pebble try
	}
	return need, du.AvailBytes, du.AvailBytes >= need
}

func (s *Store) openPebble(readOnly bool) (*pebble.DB, error) {
	return pebble.Open(filepath.Join(s.dir, "db"), &pebble.Options{
		Logger: &pebbleLogger{s: s}, FS: s.fs, ReadOnly: readOnly,
	})
}

// Close flushes and closes the database. After a failed write (already
// reported) Pebble's close reports it again; that is logged, not returned.
func (s *Store) Close() error {
	s.stop()
	s.wg.Wait()
	err := s.quiesce().Close()
	if err != nil && s.writeFailure() != nil {
		s.log.Warn("close after a failed write", "err", err.Error())
		return nil
	}
	return err
}

// Dir is the data directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// Metrics returns Pebble's own counters, for /metrics.
func (s *Store) Metrics() *pebble.Metrics {
	db, done, err := s.reader()
	if err != nil {
		return &pebble.Metrics{}
	}
	defer done()
	return db.Metrics()
}

// getProto reads key into msg. It returns ErrNotFound when the key is absent.
func (s *Store) getProto(key []byte, msg proto.Message) error {
	db, done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("persistence: get %q: %w", key, err)
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, msg); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrCorrupt, key, err)
	}
	return nil
}

// scan calls fn for every key with the prefix, in key order (or reverse).
// fn returns false to stop.
func (s *Store) scan(prefix []byte, reverse bool, fn func(key, value []byte) (bool, error)) error {
	db, done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("persistence: iterate %q: %w", prefix, err)
	}
	defer it.Close()
	valid := it.First()
	if reverse {
		valid = it.Last()
	}
	for ; valid; valid = step(it, reverse) {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("persistence: read %q: %w", it.Key(), err)
		}
		more, err := fn(it.Key(), v)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// prefixEnd is the smallest key greater than every key with the prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// pebbleLogger is Pebble's logger. Its errors are logged at most once a
// minute per kind (a full disk makes Pebble retry its background work and
// say so each time), and Fatalf does not end the process: Pebble calls it
// when a commit failed (e.g. ENOSPC on the WAL), and then returns as if the
// commit had worked. The store takes no write after that (Batch.Commit
// answers the failure), while reads go on.
type pebbleLogger struct{ s *Store }

var _ pebble.Logger = (*pebbleLogger)(nil)

func (l *pebbleLogger) Infof(format string, args ...any) {
	l.s.log.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (l *pebbleLogger) Errorf(format string, args ...any) {
	l.s.logs.every("pebble error: "+format, func(dropped int) {
		l.s.log.Error("pebble", "msg", fmt.Sprintf(format, args...), "same_kind_since_last_log", dropped)
	})
}

func (l *pebbleLogger) Fatalf(format string, args ...any) {
	cause := &pebbleFatal{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			cause.errs = append(cause.errs, err)
		}
	}
	if l.s.failWrites(cause) {
		l.s.log.Error("pebble failed a write: the store reopens, and takes writes again once the disk has room; reads go on", "err", cause)
		l.s.reopenSoon()
		return
	}
	l.s.logs.every("pebble fatal: "+format, func(dropped int) {
		l.s.log.Error("pebble failed a write again", "err", cause, "same_kind_since_last_log", dropped)
	})
}

// pebbleFatal is what Pebble reported through Fatalf: its message, and the
// errors among its arguments (so that errors.Is finds ENOSPC in it).
type pebbleFatal struct {
	msg  string
	errs []error
}

func (e *pebbleFatal) Error() string   { return e.msg }
func (e *pebbleFatal) Unwrap() []error { return e.errs }

// getRaw returns a copy of key's value, or ErrNotFound when it is absent.
func (s *Store) getRaw(key []byte) ([]byte, error) {
	db, done, err := s.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("persistence: get %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}
