package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/raft"

	"github.com/quirehq/quire/messages"
)

// The contract tests of raft-boltdb (bolt_store_test.go), ported: the same
// cases against RaftLog on a Pebble store, plus the edges they leave out.

func testRaftLog(idx uint64, data string) *raft.Log {
	return &raft.Log{Data: []byte(data), Index: idx}
}

func raftLogs(first, last uint64) []*raft.Log {
	var logs []*raft.Log
	for i := first; i <= last; i++ {
		logs = append(logs, testRaftLog(i, fmt.Sprintf("log%d", i)))
	}
	return logs
}

func mustGetLog(tb testing.TB, l *RaftLog, idx uint64) *raft.Log {
	tb.Helper()
	got := new(raft.Log)
	if err := l.GetLog(idx, got); err != nil {
		tb.Fatalf("GetLog(%d): %v", idx, err)
	}
	return got
}

// diffLog compares entries by value: AppendedAt with time.Equal (a reopened
// entry has lost its monotonic clock reading), an empty slice as nil.
func diffLog(want, got *raft.Log) string {
	return cmp.Diff(want, got, cmpopts.EquateEmpty())
}

// indexes answers FirstIndex and LastIndex.
func indexes(tb testing.TB, l *RaftLog) (first, last uint64) {
	tb.Helper()
	first, err := l.FirstIndex()
	if err != nil {
		tb.Fatalf("FirstIndex: %v", err)
	}
	last, err = l.LastIndex()
	if err != nil {
		tb.Fatalf("LastIndex: %v", err)
	}
	return first, last
}

// TestRaftLogFirstLastIndex: 0 and 0 on an empty log, even with other keys
// (job events, balances, stable keys) around it in the store; then the first
// and last stored index, in numeric order beyond one byte (2 < 256 < 300).
func TestRaftLogFirstLastIndex(t *testing.T) {
	s := openStore(t)
	l := s.RaftLog()
	if first, last := indexes(t, l); first != 0 || last != 0 {
		t.Fatalf("empty log: FirstIndex, LastIndex = %d, %d; want 0, 0", first, last)
	}
	must(t, s.AppendJobEvents(created("job-a", "acct", 1)))
	must(t, putBalance(s, "acct", 1, 10))
	must(t, l.SetUint64([]byte("CurrentTerm"), 7))
	must(t, l.Set([]byte("\xff\xff"), []byte("x")))
	if first, last := indexes(t, l); first != 0 || last != 0 {
		t.Fatalf("empty log beside other keys: FirstIndex, LastIndex = %d, %d; want 0, 0", first, last)
	}

	must(t, l.StoreLogs(raftLogs(1, 3)))
	if first, last := indexes(t, l); first != 1 || last != 3 {
		t.Fatalf("after 1..3: FirstIndex, LastIndex = %d, %d; want 1, 3", first, last)
	}
	must(t, l.StoreLogs([]*raft.Log{testRaftLog(256, "a"), testRaftLog(300, "b")}))
	must(t, l.DeleteRange(1, 1))
	if first, last := indexes(t, l); first != 2 || last != 300 {
		t.Fatalf("after 2, 3, 256, 300: FirstIndex, LastIndex = %d, %d; want 2, 300", first, last)
	}
	if got := mustGetLog(t, l, 256); string(got.Data) != "a" {
		t.Errorf("GetLog(256).Data = %q, want a", got.Data)
	}
}

func TestRaftLogGetLog(t *testing.T) {
	l := openStore(t).RaftLog()
	if err := l.GetLog(1, new(raft.Log)); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog on an empty log: %v, want raft.ErrLogNotFound itself", err)
	}
	logs := raftLogs(1, 3)
	must(t, l.StoreLogs(logs))
	if diff := diffLog(logs[1], mustGetLog(t, l, 2)); diff != "" {
		t.Errorf("GetLog(2) (-want +got):\n%s", diff)
	}
	for _, idx := range []uint64{0, 4, math.MaxUint64} {
		if err := l.GetLog(idx, new(raft.Log)); err != raft.ErrLogNotFound {
			t.Errorf("GetLog(%d) beyond the log: %v, want raft.ErrLogNotFound itself", idx, err)
		}
	}
}

func TestRaftLogStoreLog(t *testing.T) {
	l := openStore(t).RaftLog()
	log := &raft.Log{Data: []byte("log1"), Index: 1}
	must(t, l.StoreLog(log))
	if diff := diffLog(log, mustGetLog(t, l, 1)); diff != "" {
		t.Errorf("GetLog(1) (-want +got):\n%s", diff)
	}
	// raft overwrites an entry a new leader replaced (a conflicting suffix).
	replaced := &raft.Log{Data: []byte("log1, term 2"), Index: 1, Term: 2}
	must(t, l.StoreLog(replaced))
	if diff := diffLog(replaced, mustGetLog(t, l, 1)); diff != "" {
		t.Errorf("GetLog(1) after overwriting (-want +got):\n%s", diff)
	}
}

func TestRaftLogStoreLogs(t *testing.T) {
	l := openStore(t).RaftLog()
	logs := raftLogs(1, 2)
	must(t, l.StoreLogs(logs))
	for i, want := range logs {
		if diff := diffLog(want, mustGetLog(t, l, want.Index)); diff != "" {
			t.Errorf("GetLog of entry %d (-want +got):\n%s", i, diff)
		}
	}
	must(t, l.StoreLogs(nil))
	if first, last := indexes(t, l); first != 1 || last != 2 {
		t.Errorf("after StoreLogs(nil): FirstIndex, LastIndex = %d, %d; want 1, 2", first, last)
	}
}

// TestRaftLogDeleteRange: raft-boltdb's case (1..2 of 1..3), then from the
// head (compaction after a snapshot), from the tail (a conflicting suffix),
// the middle, everything, and up to the largest index.
func TestRaftLogDeleteRange(t *testing.T) {
	tests := []struct {
		name                string
		min, max            uint64
		wantFirst, wantLast uint64
	}{
		{"boltdb case", 1, 2, 3, 10},
		{"head", 1, 4, 5, 10},
		{"tail", 7, 10, 1, 6},
		{"middle", 4, 6, 1, 10},
		{"one", 5, 5, 1, 10},
		{"all", 1, 10, 0, 0},
		{"beyond both ends", 0, math.MaxUint64, 0, 0},
		{"from the middle to the largest index", 6, math.MaxUint64, 1, 5},
		{"nothing: min above max", 6, 5, 1, 10},
		{"nothing: outside the log", 11, 20, 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openStore(t).RaftLog()
			must(t, l.StoreLogs(raftLogs(1, 10)))
			must(t, l.SetUint64([]byte("CurrentTerm"), 3))
			must(t, l.DeleteRange(tt.min, tt.max))
			if first, last := indexes(t, l); first != tt.wantFirst || last != tt.wantLast {
				t.Errorf("FirstIndex, LastIndex = %d, %d; want %d, %d", first, last, tt.wantFirst, tt.wantLast)
			}
			for i := uint64(1); i <= 10; i++ {
				err := l.GetLog(i, new(raft.Log))
				deleted := i >= tt.min && i <= tt.max
				switch {
				case deleted && err != raft.ErrLogNotFound:
					t.Errorf("GetLog(%d) of a deleted entry: %v, want raft.ErrLogNotFound", i, err)
				case !deleted && err != nil:
					t.Errorf("GetLog(%d) of a kept entry: %v", i, err)
				}
			}
			if term, err := l.GetUint64([]byte("CurrentTerm")); err != nil || term != 3 {
				t.Errorf("stable key after DeleteRange: %d, %v; want 3", term, err)
			}
		})
	}
}

// TestRaftStableSetGet: a key never set answers an error whose text is
// exactly "not found" (what raft's NewRaft, HasExistingState and requestVote
// accept as "never set", and raft-boltdb's ErrKeyNotFound says) and that is
// ErrNotFound; a set key answers its value, a copy.
func TestRaftStableSetGet(t *testing.T) {
	l := openStore(t).RaftLog()
	if v, err := l.Get([]byte("bad")); err == nil || err.Error() != "not found" || !errors.Is(err, ErrNotFound) || v != nil {
		t.Fatalf("Get of a missing key = %q, %v; want nil and an error saying exactly \"not found\"", v, err)
	}
	k, v := []byte("hello"), []byte("world")
	must(t, l.Set(k, v))
	got, err := l.Get(k)
	if err != nil || !bytes.Equal(got, v) {
		t.Fatalf("Get(hello) = %q, %v; want world", got, err)
	}
	got[0] = 'W'
	if again, _ := l.Get(k); !bytes.Equal(again, v) {
		t.Errorf("Get(hello) after changing a returned value = %q, want world", again)
	}
	must(t, l.Set(k, []byte("again")))
	if got, err := l.Get(k); err != nil || string(got) != "again" {
		t.Errorf("Get(hello) after a second Set = %q, %v; want again", got, err)
	}
	// The stable store and the log do not share keys.
	must(t, l.StoreLog(testRaftLog(1, "log1")))
	if _, err := l.Get(binary.BigEndian.AppendUint64(nil, 1)); err == nil || err.Error() != "not found" {
		t.Errorf("Get of a key shaped like a log index = %v, want not found", err)
	}
}

func TestRaftStableUint64(t *testing.T) {
	l := openStore(t).RaftLog()
	if v, err := l.GetUint64([]byte("bad")); err == nil || err.Error() != "not found" || v != 0 {
		t.Fatalf("GetUint64 of a missing key = %d, %v; want 0 and an error saying exactly \"not found\"", v, err)
	}
	for _, v := range []uint64{123, 0, math.MaxUint64} {
		must(t, l.SetUint64([]byte("abc"), v))
		if got, err := l.GetUint64([]byte("abc")); err != nil || got != v {
			t.Errorf("GetUint64 after SetUint64(%d) = %d, %v", v, got, err)
		}
	}
	must(t, l.Set([]byte("short"), []byte{1, 2, 3}))
	if _, err := l.GetUint64([]byte("short")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("GetUint64 of a 3-byte value: %v, want ErrCorrupt", err)
	}
}

// TestRaftLogSurvivesReopen: every field of an entry (Type, Term,
// Extensions, AppendedAt) and the stable keys are on disk, not in memory.
func TestRaftLogSurvivesReopen(t *testing.T) {
	s := openStore(t)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	want := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("config"), AppendedAt: at},
		{Index: 2, Term: 2, Type: raft.LogNoop, AppendedAt: at.Add(time.Second)},
		{Index: 3, Term: 2, Type: raft.LogCommand, Data: []byte("cmd"), Extensions: []byte{0, 1, 2}, AppendedAt: at.Add(2 * time.Second)},
		{Index: 4, Term: 2, Type: raft.LogBarrier}, // AppendedAt unknown: stays zero
	}
	l := s.RaftLog()
	must(t, l.StoreLogs(want))
	must(t, l.SetUint64([]byte("CurrentTerm"), 2))
	must(t, l.Set([]byte("LastVoteCand"), []byte("n1")))

	l = reopen(t, s).RaftLog()
	if first, last := indexes(t, l); first != 1 || last != 4 {
		t.Fatalf("after reopening: FirstIndex, LastIndex = %d, %d; want 1, 4", first, last)
	}
	for _, w := range want {
		if diff := diffLog(w, mustGetLog(t, l, w.Index)); diff != "" {
			t.Errorf("GetLog(%d) after reopening (-want +got):\n%s", w.Index, diff)
		}
	}
	if got := mustGetLog(t, l, 4); !got.AppendedAt.IsZero() {
		t.Errorf("AppendedAt of an entry without one = %v, want zero", got.AppendedAt)
	}
	if term, err := l.GetUint64([]byte("CurrentTerm")); err != nil || term != 2 {
		t.Errorf("CurrentTerm after reopening = %d, %v; want 2", term, err)
	}
	if cand, err := l.Get([]byte("LastVoteCand")); err != nil || string(cand) != "n1" {
		t.Errorf("LastVoteCand after reopening = %q, %v; want n1", cand, err)
	}
}

// TestRaftLogStoredAsRaftLogEntry: an entry is a protobuf RaftLogEntry under
// raft/log/ and its 8-byte big-endian index (keys.go).
func TestRaftLogStoredAsRaftLogEntry(t *testing.T) {
	s := openStore(t)
	must(t, s.RaftLog().StoreLog(&raft.Log{Index: 258, Term: 3, Type: raft.LogCommand, Data: []byte("x")}))
	var e messages.RaftLogEntry
	must(t, s.getProto([]byte("raft/log/\x00\x00\x00\x00\x00\x00\x01\x02"), &e))
	if e.GetIndex() != 258 || e.GetTerm() != 3 || string(e.GetData()) != "x" {
		t.Errorf("stored entry = %v, want index 258, term 3, data x", &e)
	}
	must(t, s.RaftLog().SetUint64([]byte("CurrentTerm"), 5))
	if v, err := s.getRaw([]byte("raft/stable/CurrentTerm")); err != nil || binary.BigEndian.Uint64(v) != 5 {
		t.Errorf("raft/stable/CurrentTerm = %x, %v; want 5 as 8 bytes big-endian", v, err)
	}
}

// TestRaftLogCorruptEntry: an entry that does not decode, or that is stored
// under another index than its own, is ErrCorrupt, not a wrong entry.
func TestRaftLogCorruptEntry(t *testing.T) {
	s := openStore(t)
	l := s.RaftLog()
	b := s.NewBatch()
	b.set(raftLogKey(1), []byte{0xff, 0xff})
	b.setProto(raftLogKey(2), &messages.RaftLogEntry{Index: 3, Term: 1})
	must(t, b.Commit())
	for _, idx := range []uint64{1, 2} {
		if err := l.GetLog(idx, new(raft.Log)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("GetLog(%d): %v, want ErrCorrupt", idx, err)
		}
	}
}

// TestRaftLogWritesAreSynced: what StoreLogs, DeleteRange and SetUint64
// acknowledged is in a crash image of the file system taken right after
// (the data synced to disk, nothing more).
func TestRaftLogWritesAreSynced(t *testing.T) {
	dir := t.TempDir()
	mem := vfs.NewCrashableMem()
	l := openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: mem}).RaftLog()
	must(t, l.StoreLogs(raftLogs(1, 5)))
	must(t, l.DeleteRange(1, 2))
	must(t, l.StoreLog(testRaftLog(6, "log6")))
	must(t, l.SetUint64([]byte("CurrentTerm"), 4))

	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	l = openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: crashed}).RaftLog()
	if first, last := indexes(t, l); first != 3 || last != 6 {
		t.Errorf("after the crash: FirstIndex, LastIndex = %d, %d; want 3, 6", first, last)
	}
	if got := mustGetLog(t, l, 6); string(got.Data) != "log6" {
		t.Errorf("GetLog(6) after the crash: %q, want log6", got.Data)
	}
	if term, err := l.GetUint64([]byte("CurrentTerm")); err != nil || term != 4 {
		t.Errorf("CurrentTerm after the crash = %d, %v; want 4", term, err)
	}
}

// TestRaftLogDiskFull: on a full disk StoreLogs, DeleteRange and Set answer
// ErrInsufficientStorage; the log keeps exactly what was acknowledged (no
// entry of the failed batch, none of it half-written, nothing deleted), and
// takes writes again once the disk has room.
func TestRaftLogDiskFull(t *testing.T) {
	dir := t.TempDir()
	disk := newFullDisk()
	s := openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: disk, RecheckEvery: 10 * time.Millisecond})
	l := s.RaftLog()
	acked := raftLogs(1, 3)
	must(t, l.StoreLogs(acked))
	must(t, l.SetUint64([]byte("CurrentTerm"), 1))

	disk.full.Store(true)
	if err := l.StoreLogs(raftLogs(4, 6)); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("StoreLogs on a full disk: %v, want ErrInsufficientStorage", err)
	}
	// The failed batch may linger in Pebble's memtable until the store has
	// reopened its database (a few milliseconds).
	pollUntil(t, 10*time.Second, "the failed entries are still read", func() bool {
		last, err := l.LastIndex()
		return err == nil && last == 3
	})
	if err := l.DeleteRange(1, 2); !errors.Is(err, ErrInsufficientStorage) {
		t.Errorf("DeleteRange on a full disk: %v, want ErrInsufficientStorage", err)
	}
	if err := l.SetUint64([]byte("CurrentTerm"), 2); !errors.Is(err, ErrInsufficientStorage) {
		t.Errorf("SetUint64 on a full disk: %v, want ErrInsufficientStorage", err)
	}
	checkLog := func(what string, want []*raft.Log, term uint64) {
		t.Helper()
		if first, last := indexes(t, l); first != want[0].Index || last != want[len(want)-1].Index {
			t.Errorf("%s: FirstIndex, LastIndex = %d, %d; want %d, %d", what, first, last, want[0].Index, want[len(want)-1].Index)
		}
		for _, w := range want {
			if diff := diffLog(w, mustGetLog(t, l, w.Index)); diff != "" {
				t.Errorf("%s: GetLog(%d) (-want +got):\n%s", what, w.Index, diff)
			}
		}
		if err := l.GetLog(want[len(want)-1].Index+1, new(raft.Log)); err != raft.ErrLogNotFound {
			t.Errorf("%s: GetLog after the last entry: %v, want raft.ErrLogNotFound", what, err)
		}
		if got, err := l.GetUint64([]byte("CurrentTerm")); err != nil || got != term {
			t.Errorf("%s: CurrentTerm = %d, %v; want %d", what, got, err, term)
		}
	}
	checkLog("on the full disk", acked, 1)

	disk.full.Store(false)
	more := raftLogs(4, 5)
	pollUntil(t, 10*time.Second, "StoreLogs refused after the disk has room again", func() bool {
		return l.StoreLogs(more) == nil
	})
	must(t, l.SetUint64([]byte("CurrentTerm"), 2))
	closeStore(t, s)
	s = openWith(t, dir, slog.New(slog.DiscardHandler), Options{FS: disk})
	l = s.RaftLog()
	checkLog("after reopening", append(acked, more...), 2)
}

// countingFSM is the state machine of the raft tests: it keeps the data of
// every command applied, in order.
type countingFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *countingFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(l.Data))
	return len(f.applied)
}

func (f *countingFSM) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.applied...)
}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(len(f.commands())), nil
}

func (f *countingFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	_, err := io.Copy(io.Discard, rc)
	return err
}

type countSnapshot int

func (n countSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := fmt.Fprintf(sink, "%d", int(n)); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnapshot) Release() {}

// raftNode is one hashicorp/raft server of the tests, with RaftLog as its
// log and stable store.
type raftNode struct {
	id  raft.ServerID
	r   *raft.Raft
	fsm *countingFSM
	log *RaftLog
	tr  *raft.InmemTransport
}

// startRaft starts a raft server on s, its snapshots in snapDir, with
// timeouts short enough for tests. It is shut down when the test ends,
// before its store is closed.
func startRaft(tb testing.TB, s *Store, snapDir string, id raft.ServerID) *raftNode {
	tb.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = id
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.LogOutput = io.Discard
	snaps, err := raft.NewFileSnapshotStore(snapDir, 1, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	n := &raftNode{id: id, fsm: &countingFSM{}, log: s.RaftLog(), tr: tr}
	n.r, err = raft.NewRaft(conf, n.fsm, n.log, n.log, snaps, tr)
	if err != nil {
		tb.Fatalf("NewRaft(%s): %v", id, err)
	}
	tb.Cleanup(func() { _ = n.r.Shutdown().Error() })
	return n
}

func voters(nodes ...*raftNode) raft.Configuration {
	var c raft.Configuration
	for _, n := range nodes {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: n.id, Address: raft.ServerAddress(n.id)})
	}
	return c
}

// waitLeader waits until one of nodes is the leader, and returns it.
func waitLeader(tb testing.TB, nodes ...*raftNode) *raftNode {
	tb.Helper()
	var leader *raftNode
	pollUntil(tb, 5*time.Second, "no leader elected", func() bool {
		for _, n := range nodes {
			if n.r.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// keyCurrentTerm is the stable key raft keeps its term under (raft.go, keyCurrentTerm).
var keyCurrentTerm = []byte("CurrentTerm")

// TestRaftNodeRestartsOnItsLog: a one-voter raft group on RaftLog bootstraps,
// becomes leader and applies commands; shut down and started again on the
// reopened store, it finds its state (term, log), becomes leader again and
// its new state machine replays every command from the log.
func TestRaftNodeRestartsOnItsLog(t *testing.T) {
	s, snapDir := openStore(t), t.TempDir()
	snaps, err := raft.NewFileSnapshotStore(snapDir, 1, io.Discard)
	must(t, err)
	if has, err := raft.HasExistingState(s.RaftLog(), s.RaftLog(), snaps); err != nil || has {
		t.Fatalf("HasExistingState on a new store = %v, %v; want false, nil", has, err)
	}
	n := startRaft(t, s, snapDir, "n1")
	must(t, n.r.BootstrapCluster(voters(n)).Error())
	waitLeader(t, n)
	const commands = 20
	var want []string
	for i := range commands {
		want = append(want, fmt.Sprintf("cmd-%d", i))
		must(t, n.r.Apply([]byte(want[i]), 5*time.Second).Error())
	}
	if diff := cmp.Diff(want, n.fsm.commands()); diff != "" {
		t.Fatalf("commands applied (-want +got):\n%s", diff)
	}
	term := n.r.CurrentTerm()
	must(t, n.r.Shutdown().Error())

	s = reopen(t, s)
	l := s.RaftLog()
	if stored, err := l.GetUint64(keyCurrentTerm); err != nil || stored == 0 || stored != term {
		t.Fatalf("stored term after the restart = %d, %v; want raft's term %d", stored, err, term)
	}
	if last, err := l.LastIndex(); err != nil || last < commands {
		t.Fatalf("LastIndex after the restart = %d, %v; want at least %d", last, err, commands)
	}
	if has, err := raft.HasExistingState(l, l, snaps); err != nil || !has {
		t.Fatalf("HasExistingState after the restart = %v, %v; want true", has, err)
	}

	n = startRaft(t, s, snapDir, "n1")
	waitLeader(t, n)
	pollUntil(t, 5*time.Second, "the new state machine did not replay the log", func() bool {
		return len(n.fsm.commands()) >= commands
	})
	must(t, n.r.Apply([]byte("after"), 5*time.Second).Error())
	if diff := cmp.Diff(append(want, "after"), n.fsm.commands()); diff != "" {
		t.Errorf("commands applied after the restart (-want +got):\n%s", diff)
	}
	if got := n.r.CurrentTerm(); got <= term {
		t.Errorf("term after the restart = %d, want above the stored %d (raft read it back)", got, term)
	}
}

// TestRaftThreeNodesReplicate: three raft servers, each on its own store,
// elect a leader; a command applied on it is in all three logs and applied
// by all three state machines.
func TestRaftThreeNodesReplicate(t *testing.T) {
	var nodes []*raftNode
	for _, id := range []raft.ServerID{"n1", "n2", "n3"} {
		nodes = append(nodes, startRaft(t, openStore(t), t.TempDir(), id))
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.Connect(raft.ServerAddress(b.id), b.tr)
			}
		}
	}
	for _, n := range nodes {
		must(t, n.r.BootstrapCluster(voters(nodes...)).Error())
	}
	// With test timeouts this short, a busy machine may see the first leader
	// lose its lease before the command commits: apply again on the next one.
	var idx uint64
	pollUntil(t, 10*time.Second, "the command was not committed", func() bool {
		f := waitLeader(t, nodes...).r.Apply([]byte("replicated"), 5*time.Second)
		if err := f.Error(); err != nil {
			t.Logf("apply: %v", err)
			return false
		}
		idx = f.Index()
		return true
	})
	for _, n := range nodes {
		pollUntil(t, 5*time.Second, fmt.Sprintf("%s: entry %d not stored", n.id, idx), func() bool {
			last, err := n.log.LastIndex()
			return err == nil && last >= idx
		})
		got := mustGetLog(t, n.log, idx)
		if string(got.Data) != "replicated" || got.Type != raft.LogCommand {
			t.Errorf("%s: entry %d = %v %q, want the command", n.id, idx, got.Type, got.Data)
		}
		pollUntil(t, 5*time.Second, fmt.Sprintf("%s: command not applied", n.id), func() bool {
			return slices.Contains(n.fsm.commands(), "replicated")
		})
	}
}
