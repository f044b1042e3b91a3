package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
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
)

// Store is one node's durable state: Pebble under dir/db, blobs under
// dir/blobs, uploads in progress under dir/tmp.
type Store struct {
	db    *pebble.DB
	dir   string
	blobs string
	cache string
	tmp   string
	log   *slog.Logger
	// fetches makes concurrent fetches of one job's PDF from another node one.
	fetches singleflight.Group
}

// Open opens (or creates) the store in dir. Uploads left in dir/tmp by a
// previous process are removed: an upload that was not turned into a job
// before a crash was never acknowledged.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{
		dir:   dir,
		blobs: filepath.Join(dir, "blobs"),
		cache: filepath.Join(dir, "cache"),
		tmp:   filepath.Join(dir, "tmp"),
		log:   log,
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
	db, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{Logger: pebbleLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("persistence: open pebble in %s: %w", dir, err)
	}
	s.db = db
	return s, nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}

// Dir is the data directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// Metrics returns Pebble's own counters, for /metrics.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

// getProto reads key into msg. It returns ErrNotFound when the key is absent.
func (s *Store) getProto(key []byte, msg proto.Message) error {
	v, closer, err := s.db.Get(key)
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
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
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

type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error("pebble fatal", "msg", fmt.Sprintf(format, args...))
	os.Exit(1)
}
