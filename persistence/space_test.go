package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/quirehq/quire/messages"
)

// fullDisk is the fault-injecting file system of these tests: while full is
// set, every write Pebble makes under dir fails with ENOSPC, as a full disk
// answers; free is what GetDiskUsage reports as available.
type fullDisk struct {
	vfs.FS
	full atomic.Bool
	free atomic.Uint64
}

func newFullDisk() *fullDisk {
	d := &fullDisk{}
	d.free.Store(1 << 40)
	d.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !d.full.Load() {
			return nil
		}
		switch op.Kind {
		case errorfs.OpCreate, errorfs.OpLink, errorfs.OpReuseForWrite, errorfs.OpFilePreallocate,
			errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData,
			errorfs.OpFileSyncTo, errorfs.OpFileFlush:
			return &fsError{op: op, err: syscall.ENOSPC}
		}
		return nil
	}))
	return d
}

func (d *fullDisk) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	return vfs.DiskUsage{AvailBytes: d.free.Load(), TotalBytes: 1 << 40}, nil
}

type fsError struct {
	op  errorfs.Op
	err error
}

func (e *fsError) Error() string { return e.op.Path + ": " + e.err.Error() }
func (e *fsError) Unwrap() error { return e.err }

// lineCounter is a slog handler that counts the records at or above Warn.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *lineCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		c.mu.Lock()
		c.lines = append(c.lines, r.Message)
		c.mu.Unlock()
	}
	return nil
}
func (c *lineCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *lineCounter) WithGroup(string) slog.Handler      { return c }
func (c *lineCounter) count() int                         { c.mu.Lock(); defer c.mu.Unlock(); return len(c.lines) }

func openWith(tb testing.TB, dir string, log *slog.Logger, o Options) *Store {
	tb.Helper()
	s, err := OpenWith(dir, log, o)
	if err != nil {
		tb.Fatalf("OpenWith(%s): %v", dir, err)
	}
	closer := sync.OnceValue(s.Close)
	closers.Store(s, closer)
	tb.Cleanup(func() { _ = closer(); closers.Delete(s) })
	return s
}

func grantEntry(account string, seq, amount int64) *messages.LedgerEntry {
	return &messages.LedgerEntry{Seq: seq, AccountId: account, Kind: messages.LedgerKind_LEDGER_KIND_GRANT, Amount: amount}
}

func putBalance(s *Store, account string, seq, balance int64) error {
	b := s.NewBatch()
	b.PutLedgerEntry(grantEntry(account, seq, balance))
	b.PutBalance(&messages.Balance{AccountId: account, Granted: balance})
	return b.Commit()
}

// TestCommitOutOfSpaceKeepsProcess: a WAL write that fails with ENOSPC used
// to end the process (Pebble's Fatalf, then os.Exit). Now the commit answers
// ErrInsufficientStorage; the store reopens, so reads no longer see the
// failed write Pebble had put in its memtable; while the disk is full every
// write answers ErrInsufficientStorage and the log stays short; once the
// disk has room, writes work again without a restart, and a later reopen
// finds exactly what was acknowledged.
func TestCommitOutOfSpaceKeepsProcess(t *testing.T) {
	dir := t.TempDir()
	disk := newFullDisk()
	logs := &lineCounter{}
	s := openWith(t, dir, slog.New(logs), Options{FS: disk, RecheckEvery: 10 * time.Millisecond})
	granted := func() int64 {
		t.Helper()
		bal, err := s.Balance("acct")
		if err != nil {
			t.Fatalf("read balance: %v", err)
		}
		return bal.GetGranted()
	}
	if err := putBalance(s, "acct", 1, 100); err != nil {
		t.Fatalf("commit before the disk fills: %v", err)
	}

	disk.full.Store(true)
	if err := putBalance(s, "acct", 2, 200); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("commit on a full disk: got %v, want ErrInsufficientStorage", err)
	}
	pollUntil(t, 10*time.Second, "reads still see the write that failed", func() bool { return granted() == 100 })
	for i := range 50 {
		if err := putBalance(s, "acct", int64(3+i), 300); !errors.Is(err, ErrInsufficientStorage) {
			t.Fatalf("commit %d on the full disk: got %v, want ErrInsufficientStorage", i, err)
		}
	}
	if err := s.CheckSpace(); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("CheckSpace after a failed commit: got %v, want ErrInsufficientStorage", err)
	}
	if es, err := s.LedgerEntries("acct", false, 10); err != nil || len(es) != 1 {
		t.Fatalf("ledger entries on the full disk = %v (%v), want the one acknowledged grant", es, err)
	}
	if n := logs.count(); n > 4 {
		t.Errorf("%d warning/error lines for one failure and 50 refused writes, want at most 4: %q", n, logs.lines)
	}

	disk.full.Store(false)
	pollUntil(t, 10*time.Second, "writes refused after the disk has room again", func() bool {
		return putBalance(s, "acct", 2, 250) == nil
	})
	if got := granted(); got != 250 {
		t.Errorf("balance after the disk has room again = %d, want 250", got)
	}

	closeStore(t, s)
	s = openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: disk})
	if got := granted(); got != 250 {
		t.Errorf("balance after reopening = %d, want 250 (the acknowledged writes)", got)
	}
	if es, err := s.LedgerEntries("acct", false, 10); err != nil || len(es) != 2 {
		t.Errorf("ledger entries after reopening = %v (%v), want the two acknowledged grants", es, err)
	}
}

// pollUntil polls cond until it is true or the deadline passes.
func pollUntil(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", timeout, what)
		}
		<-tick.C
	}
}

// TestOpenOnFullDiskIsReadOnly: a store that cannot open for writing opens
// read-only: reads answer, writes answer ErrInsufficientStorage, the process
// goes on. "no room" does not even try: with less free space than opening
// for writing needs, Pebble would retry its failed MANIFEST write for ever
// (a spinning node that never served).
func TestOpenOnFullDiskIsReadOnly(t *testing.T) {
	tests := []struct {
		name string
		fill func(d *fullDisk)
		back func(d *fullDisk)
	}{
		{"writes fail", func(d *fullDisk) { d.full.Store(true) }, func(d *fullDisk) { d.full.Store(false) }},
		{"no room", func(d *fullDisk) { d.free.Store(openReserveBytes - 1) }, func(d *fullDisk) { d.free.Store(1 << 40) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			disk := newFullDisk()
			s := openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: disk})
			if err := putBalance(s, "acct", 1, 100); err != nil {
				t.Fatal(err)
			}
			closeStore(t, s)

			tt.fill(disk)
			s = openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: disk})
			bal, err := s.Balance("acct")
			if err != nil || bal.GetGranted() != 100 {
				t.Fatalf("balance on a read-only store = %v (%v), want 100", bal, err)
			}
			if err := putBalance(s, "acct", 2, 200); !errors.Is(err, ErrInsufficientStorage) {
				t.Fatalf("write on a read-only store: got %v, want ErrInsufficientStorage", err)
			}
			closeStore(t, s)

			tt.back(disk)
			s = openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: disk})
			if err := putBalance(s, "acct", 2, 200); err != nil {
				t.Fatalf("write after space came back and the store reopened: %v", err)
			}
		})
	}
}

// TestCheckSpaceFloor: below the free-space floor CheckSpace refuses with
// ErrInsufficientStorage (no write is made), logs it once a minute however
// often it is asked, and accepts again as soon as space is back, without a
// restart.
func TestCheckSpaceFloor(t *testing.T) {
	disk := newFullDisk()
	logs := &lineCounter{}
	s := openWith(t, t.TempDir(), slog.New(logs), Options{FS: disk, MinFreeBytes: 64 << 20})
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s.logs.now = func() time.Time { return time.Unix(0, now.Load()) }

	tests := []struct {
		name  string
		free  uint64
		want  error
		lines int // warning lines logged so far
	}{
		{"plenty", 1 << 30, nil, 0},
		{"at the floor", 64 << 20, nil, 0},
		{"below the floor", 64<<20 - 1, ErrInsufficientStorage, 1},
		{"still below, same minute", 1 << 20, ErrInsufficientStorage, 1},
		{"space back", 100 << 20, nil, 1},
	}
	for _, tt := range tests {
		disk.free.Store(tt.free)
		for range 100 {
			if err := s.CheckSpace(); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("%s: CheckSpace() = %v, want %v", tt.name, err, tt.want)
			}
		}
		if got := logs.count(); got != tt.lines {
			t.Fatalf("%s: %d warning lines, want %d: %q", tt.name, got, tt.lines, logs.lines)
		}
	}
	disk.free.Store(1 << 20)
	now.Add(int64(time.Minute))
	_ = s.CheckSpace()
	if got := logs.count(); got != 2 {
		t.Errorf("a minute later: %d warning lines, want 2", got)
	}
	if err := putBalance(s, "acct", 1, 5); err != nil {
		t.Errorf("a commit below the floor (the floor is for new work only): %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{MinFreeBytes: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Validate(-1) = %v, want a complaint about a negative floor", err)
	}
	if _, err := OpenWith(filepath.Join(t.TempDir(), "x"), nil, Options{MinFreeBytes: -1}); err == nil {
		t.Error("OpenWith with a negative floor opened")
	}
}

// TestReopenUnderReads: reopening the database waits for the reads in
// progress, including a read made inside another one (a scan's callback),
// and never deadlocks them; meanwhile new reads answer ErrReopening (and
// nothing else), and every read that answers sees the same data.
func TestReopenUnderReads(t *testing.T) {
	s := openWith(t, t.TempDir(), slog.New(slog.DiscardHandler), Options{RecheckEvery: time.Hour})
	for i := range 20 {
		if err := putBalance(s, fmt.Sprintf("acct-%02d", i), int64(i+1), 10); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var reads, refused atomic.Int64
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				bals, err := s.Balances() // a scan
				if err == nil && len(bals) != 20 {
					t.Errorf("balances during reopen: %d, want 20", len(bals))
					return
				}
				if err == nil {
					err = s.scan([]byte("bal/"), false, func(_, _ []byte) (bool, error) {
						_, err := s.Balance("acct-00") // a read inside a read
						return false, err
					})
				}
				switch {
				case err == nil:
					reads.Add(1)
				case errors.Is(err, ErrReopening):
					refused.Add(1)
				default:
					t.Errorf("read during reopen: %v", err)
					return
				}
			}
		}()
	}
	for range 20 {
		s.reopen()
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reads answered, %d refused while reopening", reads.Load(), refused.Load())
	if err := putBalance(s, "acct-new", 100, 1); err != nil {
		t.Errorf("write after reopening: %v", err)
	}
}
