package persistence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/messages"
)

// openStore opens a store in a fresh temporary directory and closes it when
// the test ends.
func openStore(tb testing.TB) *Store {
	tb.Helper()
	return openStoreIn(tb, tb.TempDir())
}

// openStoreIn opens the store in dir. It is closed when the test ends,
// unless the test closed it first with closeStore.
func openStoreIn(tb testing.TB, dir string) *Store {
	tb.Helper()
	s, err := Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	closer := sync.OnceValue(s.Close)
	closers.Store(s, closer)
	tb.Cleanup(func() { _ = closer(); closers.Delete(s) })
	return s
}

// closers holds, for every store a test opened, a Close that runs once
// (Pebble panics when closed twice).
var closers sync.Map // *Store -> func() error

func closeStore(tb testing.TB, s *Store) {
	tb.Helper()
	c, ok := closers.Load(s)
	if !ok {
		tb.Fatal("closeStore: store not opened by openStoreIn")
	}
	if err := c.(func() error)(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

// reopen closes s and opens the store again in the same directory.
func reopen(tb testing.TB, s *Store) *Store {
	tb.Helper()
	closeStore(tb, s)
	return openStoreIn(tb, s.Dir())
}

func created(job, account string, seq int64) *messages.JobEvent {
	return &messages.JobEvent{JobId: job, Seq: seq, AtUnixMs: 1000 + seq, Event: &messages.JobEvent_Created{
		Created: &messages.JobCreated{JobId: job, AccountId: account, Pages: 3, ChunkPages: 1, Extractor: "text"},
	}}
}

func planned(job string, seq int64, chunks int) *messages.JobEvent {
	var rs []*messages.ChunkRange
	for i := range chunks {
		rs = append(rs, &messages.ChunkRange{Index: int32(i), FirstPage: int32(i + 1), LastPage: int32(i + 1)})
	}
	return &messages.JobEvent{JobId: job, Seq: seq, AtUnixMs: 1000 + seq, Event: &messages.JobEvent_Planned{
		Planned: &messages.ChunksPlanned{Chunks: rs},
	}}
}

func chunkDone(job string, seq int64, index int32) *messages.JobEvent {
	return &messages.JobEvent{JobId: job, Seq: seq, AtUnixMs: 1000 + seq, Event: &messages.JobEvent_ChunkDone{
		ChunkDone: &messages.ChunkDone{Index: index, Attempt: 1, Node: "n1", DurationMs: 5},
	}}
}

func finished(job string, seq int64) *messages.JobEvent {
	return &messages.JobEvent{JobId: job, Seq: seq, AtUnixMs: 1000 + seq, Event: &messages.JobEvent_Finished{
		Finished: &messages.JobFinished{Status: messages.JobStatus_JOB_STATUS_COMPLETED, CreditsCharged: 3},
	}}
}

func newJobID(tb testing.TB) string {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	return id.String()
}

func mustJobEvents(tb testing.TB, s *Store, job string) []*messages.JobEvent {
	tb.Helper()
	evs, err := s.JobEvents(job)
	if err != nil {
		tb.Fatalf("JobEvents(%s): %v", job, err)
	}
	return evs
}

func TestJobEventsInOrder(t *testing.T) {
	s := openStore(t)
	const job = "job-a"
	// More than 16 events, so that a key order that is not numeric order
	// (seq 10 before seq 2) would show.
	want := []*messages.JobEvent{created(job, "acct", 1), planned(job, 2, 20)}
	for i := range 20 {
		want = append(want, chunkDone(job, int64(3+i), int32(i)))
	}
	// Appended one at a time and out of order of calls: the log is ordered by
	// sequence number, not by write time.
	for _, i := range []int{0, 1} {
		if err := s.AppendJobEvents(want[i]); err != nil {
			t.Fatal(err)
		}
	}
	rest := slices.Clone(want[2:])
	slices.Reverse(rest)
	if err := s.AppendJobEvents(rest...); err != nil {
		t.Fatal(err)
	}
	// A job whose id extends this one's must not leak into its log.
	if err := s.AppendJobEvents(created(job+"0", "acct", 1), planned(job+"0", 2, 1)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, mustJobEvents(t, s, job), protocmp.Transform()); diff != "" {
		t.Errorf("JobEvents (-want +got):\n%s", diff)
	}
	if got := mustJobEvents(t, s, job+"0"); len(got) != 2 {
		t.Errorf("JobEvents(%s0) = %d events, want 2", job, len(got))
	}
	if _, err := s.JobEvents("no-such-job"); !errors.Is(err, ErrNotFound) {
		t.Errorf("JobEvents(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestBatchIsAtomic(t *testing.T) {
	s := openStore(t)
	const job = "job-b"

	b := s.NewBatch()
	b.AppendJobEvent(created(job, "acct", 1))
	b.PutChunkOutput(job, &messages.ChunkOutput{Index: 0, FirstPage: 1, LastPage: 1, Output: []byte(`{}`)})
	b.PutBalance(&messages.Balance{AccountId: "acct", Granted: 10})
	b.AppendJobEvent(&messages.JobEvent{JobId: job, Seq: 0}) // invalid: no sequence number
	b.AppendJobEvent(planned(job, 2, 1))                     // valid, after the error
	if err := b.Commit(); err == nil {
		t.Fatal("Commit of a batch holding an invalid event succeeded")
	}
	if _, err := s.JobEvents(job); !errors.Is(err, ErrNotFound) {
		t.Errorf("after a failed batch, JobEvents error = %v, want ErrNotFound", err)
	}
	if outs, err := s.ChunkOutputs(job); err != nil || len(outs) != 0 {
		t.Errorf("after a failed batch, ChunkOutputs = %v, %v; want none", outs, err)
	}
	if _, err := s.Balance("acct"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after a failed batch, Balance error = %v, want ErrNotFound", err)
	}
	if ids, err := s.ActiveJobs(); err != nil || len(ids) != 0 {
		t.Errorf("after a failed batch, ActiveJobs = %v, %v; want none", ids, err)
	}

	// A discarded batch writes nothing either.
	b = s.NewBatch()
	b.AppendJobEvent(created(job, "acct", 1))
	b.Discard()
	if _, err := s.JobEvents(job); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Discard, JobEvents error = %v, want ErrNotFound", err)
	}

	// Nothing is visible before Commit, everything after.
	b = s.NewBatch()
	b.AppendJobEvent(created(job, "acct", 1))
	b.AppendJobEvent(planned(job, 2, 1))
	if _, err := s.JobEvents(job); !errors.Is(err, ErrNotFound) {
		t.Errorf("before Commit, JobEvents error = %v, want ErrNotFound", err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := mustJobEvents(t, s, job); len(got) != 2 {
		t.Errorf("after Commit, %d events, want 2", len(got))
	}
}

func TestActiveJobsRecoveryScan(t *testing.T) {
	s := openStore(t)
	// a: created and planned; b: finished; c: created only; d: events but
	// no JobCreated (never active).
	must(t, s.AppendJobEvents(created("a", "acct", 1), planned("a", 2, 1)))
	must(t, s.AppendJobEvents(created("b", "acct", 1), planned("b", 2, 1)))
	must(t, s.AppendJobEvents(chunkDone("b", 3, 0), finished("b", 4)))
	must(t, s.AppendJobEvents(created("c", "acct", 1)))
	must(t, s.AppendJobEvents(planned("d", 2, 1)))

	check := func(s *Store, want []string) {
		t.Helper()
		got, err := s.ActiveJobs()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ActiveJobs (-want +got):\n%s", diff)
		}
	}
	check(s, []string{"a", "c"})
	must(t, s.AppendJobEvents(finished("c", 2)))
	check(s, []string{"a"})
	s = reopen(t, s)
	check(s, []string{"a"})
}

func TestJobIDsNewestFirstWithCursor(t *testing.T) {
	s := openStore(t)
	var ids []string // oldest first
	for range 7 {
		id := newJobID(t)
		ids = append(ids, id)
		must(t, s.AppendJobEvents(created(id, "acct-1", 1)))
	}
	// Another account, and an account whose id extends acct-1.
	must(t, s.AppendJobEvents(created(newJobID(t), "acct-2", 1)))
	must(t, s.AppendJobEvents(created(newJobID(t), "acct-10", 1)))
	newest := slices.Clone(ids)
	slices.Reverse(newest)

	list := func(after string, limit int) []string {
		t.Helper()
		var got []string
		err := s.JobIDs("acct-1", after, func(id string) (bool, error) {
			got = append(got, id)
			return len(got) < limit, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if diff := cmp.Diff(newest, list("", 100)); diff != "" {
		t.Errorf("all jobs (-want +got):\n%s", diff)
	}
	// Walk pages of 3 with the last id of each page as the next cursor.
	var walked []string
	after := ""
	for {
		page := list(after, 3)
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		after = page[len(page)-1]
	}
	if diff := cmp.Diff(newest, walked); diff != "" {
		t.Errorf("paged walk (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(newest[3:], list(newest[2], 100)); diff != "" {
		t.Errorf("after the third newest (-want +got):\n%s", diff)
	}
	if got := list(ids[0], 100); len(got) != 0 {
		t.Errorf("after the oldest job: %v, want nothing", got)
	}

	// An error from fn stops the walk and is returned.
	boom := errors.New("boom")
	calls := 0
	err := s.JobIDs("acct-1", "", func(string) (bool, error) { calls++; return true, boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("JobIDs with failing fn: err %v after %d calls, want boom after 1", err, calls)
	}
}

func TestChunkOutputs(t *testing.T) {
	s := openStore(t)
	want := map[int32]*messages.ChunkOutput{}
	b := s.NewBatch()
	for i := range int32(3) {
		o := &messages.ChunkOutput{Index: i, FirstPage: i*10 + 1, LastPage: i*10 + 10, Output: fmt.Appendf(nil, `{"i":%d}`, i)}
		want[i] = o
		b.PutChunkOutput("j", o)
	}
	b.PutChunkOutput("j2", &messages.ChunkOutput{Index: 0})
	must(t, b.Commit())
	got, err := s.ChunkOutputs("j")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("ChunkOutputs (-want +got):\n%s", diff)
	}
	// Writing an output again replaces it: one output per chunk.
	b = s.NewBatch()
	b.PutChunkOutput("j", &messages.ChunkOutput{Index: 1, FirstPage: 11, LastPage: 20, Output: []byte(`"again"`)})
	must(t, b.Commit())
	got, err = s.ChunkOutputs("j")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[1].GetOutput()) != `"again"` {
		t.Errorf("after rewrite: %d outputs, chunk 1 = %q", len(got), got[1].GetOutput())
	}
}

func TestLedgerRecords(t *testing.T) {
	s := openStore(t)
	if seq, err := s.LedgerSeq(); err != nil || seq != 0 {
		t.Fatalf("LedgerSeq of an empty store = %d, %v", seq, err)
	}
	grant := &messages.LedgerEntry{Seq: 1, AccountId: "a", Kind: messages.LedgerKind_LEDGER_KIND_GRANT, Amount: 50, GrantId: "g1"}
	reserve := &messages.LedgerEntry{Seq: 2, AccountId: "a", JobId: "j", Kind: messages.LedgerKind_LEDGER_KIND_RESERVE, Amount: 20}
	charge := &messages.LedgerEntry{Seq: 3, AccountId: "a", JobId: "j", Kind: messages.LedgerKind_LEDGER_KIND_CHARGE, Amount: 15}
	refund := &messages.LedgerEntry{Seq: 4, AccountId: "a", JobId: "j", Kind: messages.LedgerKind_LEDGER_KIND_REFUND, Amount: 5}
	other := &messages.LedgerEntry{Seq: 5, AccountId: "b", Kind: messages.LedgerKind_LEDGER_KIND_GRANT, Amount: 1}
	b := s.NewBatch()
	for _, e := range []*messages.LedgerEntry{grant, reserve, charge, refund, other} {
		b.PutLedgerEntry(e)
	}
	b.PutBalance(&messages.Balance{AccountId: "a", Granted: 50, Charged: 15})
	b.PutBalance(&messages.Balance{AccountId: "b", Granted: 1})
	must(t, b.Commit())

	check := func(s *Store) {
		t.Helper()
		all, err := s.LedgerEntries("a", false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*messages.LedgerEntry{grant, reserve, charge, refund}, all, protocmp.Transform()); diff != "" {
			t.Errorf("LedgerEntries(a) (-want +got):\n%s", diff)
		}
		recent, err := s.LedgerEntries("a", true, 2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*messages.LedgerEntry{refund, charge}, recent, protocmp.Transform()); diff != "" {
			t.Errorf("LedgerEntries(a, newest 2) (-want +got):\n%s", diff)
		}
		for _, e := range []*messages.LedgerEntry{reserve, charge, refund} {
			got, err := s.JobLedgerEntry("j", e.GetKind())
			if err != nil {
				t.Fatalf("JobLedgerEntry(j, %v): %v", e.GetKind(), err)
			}
			if diff := cmp.Diff(e, got, protocmp.Transform()); diff != "" {
				t.Errorf("JobLedgerEntry(j, %v) (-want +got):\n%s", e.GetKind(), diff)
			}
		}
		if _, err := s.JobLedgerEntry("other-job", messages.LedgerKind_LEDGER_KIND_RESERVE); !errors.Is(err, ErrNotFound) {
			t.Errorf("JobLedgerEntry(unknown) error = %v, want ErrNotFound", err)
		}
		got, err := s.GrantLedgerEntry("a", "g1")
		if err != nil || !cmp.Equal(grant, got, protocmp.Transform()) {
			t.Errorf("GrantLedgerEntry(a, g1) = %v, %v; want %v", got, err, grant)
		}
		if _, err := s.GrantLedgerEntry("b", "g1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GrantLedgerEntry(b, g1) error = %v, want ErrNotFound (grant ids are per account)", err)
		}
		if seq, err := s.LedgerSeq(); err != nil || seq != 5 {
			t.Errorf("LedgerSeq = %d, %v; want 5", seq, err)
		}
		bals, err := s.Balances()
		if err != nil {
			t.Fatal(err)
		}
		wantBals := map[string]*messages.Balance{
			"a": {AccountId: "a", Granted: 50, Charged: 15},
			"b": {AccountId: "b", Granted: 1},
		}
		if diff := cmp.Diff(wantBals, bals, protocmp.Transform()); diff != "" {
			t.Errorf("Balances (-want +got):\n%s", diff)
		}
	}
	check(s)
	check(reopen(t, s))
}

func TestAccountsKeysAndIdempotency(t *testing.T) {
	s := openStore(t)
	sum := sha256.Sum256([]byte("qk_secret"))
	a1 := &messages.Account{Id: "acct_1", Number: 1, Name: "one"}
	a2 := &messages.Account{Id: "acct_2", Number: 2, Name: "two"}
	key := &messages.APIKey{KeyId: "key_1", AccountId: a1.Id, Sha256: sum[:]}
	idem := &messages.IdempotencyRecord{AccountId: a1.Id, Key: "k1", JobId: "j1", ExpiresUnixMs: 99}
	b := s.NewBatch()
	b.PutAccount(a1)
	b.PutAccount(a2)
	b.PutAPIKey(key)
	b.PutIdempotency(idem)
	must(t, b.Commit())

	check := func(s *Store) {
		t.Helper()
		if n, err := s.AccountSeq(); err != nil || n != 2 {
			t.Errorf("AccountSeq = %d, %v; want 2", n, err)
		}
		got, err := s.Account("acct_2")
		if err != nil || !cmp.Equal(a2, got, protocmp.Transform()) {
			t.Errorf("Account(acct_2) = %v, %v", got, err)
		}
		if _, err := s.Account("acct_3"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Account(unknown) error = %v, want ErrNotFound", err)
		}
		all, err := s.Accounts()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*messages.Account{a1, a2}, all, protocmp.Transform()); diff != "" {
			t.Errorf("Accounts (-want +got):\n%s", diff)
		}
		k, err := s.APIKeyByHash(sum[:])
		if err != nil || !cmp.Equal(key, k, protocmp.Transform()) {
			t.Errorf("APIKeyByHash = %v, %v", k, err)
		}
		other := sha256.Sum256([]byte("qk_other"))
		if _, err := s.APIKeyByHash(other[:]); !errors.Is(err, ErrNotFound) {
			t.Errorf("APIKeyByHash(unknown) error = %v, want ErrNotFound", err)
		}
		r, err := s.Idempotency(a1.Id, "k1")
		if err != nil || !cmp.Equal(idem, r, protocmp.Transform()) {
			t.Errorf("Idempotency = %v, %v", r, err)
		}
		if _, err := s.Idempotency(a2.Id, "k1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Idempotency of another account error = %v, want ErrNotFound", err)
		}
	}
	check(s)
	check(reopen(t, s))
}

// countingReader produces an endless stream of bytes and counts what it gave.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.n + int64(i))
	}
	r.n += int64(len(p))
	return len(p), nil
}

func TestUploadReceiveLimit(t *testing.T) {
	const limit = 4096
	tests := []struct {
		name    string
		size    int
		wantErr error
	}{
		{"empty", 0, nil},
		{"under the limit", limit - 1, nil},
		{"exactly the limit", limit, nil},
		{"one byte over", limit + 1, ErrUploadTooLarge},
		{"far over", 10 * limit, ErrUploadTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			data := bytes.Repeat([]byte("x"), tc.size)
			u, err := s.NewUpload()
			if err != nil {
				t.Fatal(err)
			}
			defer u.Abort()
			_, err = u.Receive(bytes.NewReader(data), limit)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Receive(%d bytes, limit %d) error = %v, want %v", tc.size, limit, err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if u.Size() > limit+1 {
					t.Errorf("read %d bytes of an oversized upload, want at most limit+1 = %d", u.Size(), limit+1)
				}
				return
			}
			sum := sha256.Sum256(data)
			if u.Size() != int64(tc.size) || u.SHA256() != hex.EncodeToString(sum[:]) {
				t.Errorf("Size, SHA256 = %d, %s; want %d, %x", u.Size(), u.SHA256(), tc.size, sum)
			}
			onDisk, err := os.ReadFile(u.Path())
			if err != nil || !bytes.Equal(onDisk, data) {
				t.Errorf("file on disk: %d bytes, %v; want the %d bytes sent", len(onDisk), err, tc.size)
			}
		})
	}
}

func TestUploadStopsReadingAtTheLimit(t *testing.T) {
	s := openStore(t)
	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Abort()
	const limit = 1 << 20
	r := &countingReader{}
	if _, err := u.Receive(r, limit); !errors.Is(err, ErrUploadTooLarge) {
		t.Fatalf("Receive(endless) error = %v, want ErrUploadTooLarge", err)
	}
	// io.Copy reads in 32 KiB buffers: an upload that read far past the
	// limit would not be streaming with bounded work.
	if r.n > limit+64<<10 {
		t.Errorf("read %d bytes of an endless upload with limit %d", r.n, limit)
	}
}

func TestUploadLimitCountsEveryRead(t *testing.T) {
	s := openStore(t)
	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Abort()
	if _, err := u.Receive(bytes.NewReader(make([]byte, 60)), 100); err != nil {
		t.Fatalf("first part: %v", err)
	}
	if _, err := u.Receive(bytes.NewReader(make([]byte, 40)), 100); err != nil {
		t.Fatalf("second part, reaching the limit exactly: %v", err)
	}
	if _, err := u.Receive(bytes.NewReader(make([]byte, 1)), 100); !errors.Is(err, ErrUploadTooLarge) {
		t.Fatalf("third part, one byte over: error %v, want ErrUploadTooLarge", err)
	}
}

func TestUploadNoLimit(t *testing.T) {
	s := openStore(t)
	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Abort()
	if n, err := u.Receive(io.LimitReader(&countingReader{}, 1<<20), 0); err != nil || n != 1<<20 {
		t.Fatalf("Receive without a limit = %d, %v", n, err)
	}
}

func TestUploadAbortRemovesTheFile(t *testing.T) {
	s := openStore(t)
	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Receive(bytes.NewReader([]byte("%PDF-1.4 partial")), 0); err != nil {
		t.Fatal(err)
	}
	if tmp := tmpFiles(t, s); len(tmp) != 1 || tmp[0] != filepath.Base(u.Path()) {
		t.Fatalf("TmpFiles during upload = %v, want [%s]", tmp, filepath.Base(u.Path()))
	}
	u.Abort()
	u.Abort() // twice is harmless
	if tmp := tmpFiles(t, s); len(tmp) != 0 {
		t.Errorf("TmpFiles after Abort = %v, want none", tmp)
	}
	if _, err := os.Stat(u.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload file after Abort: %v, want it gone", err)
	}
}

func TestUploadCommitMovesToBlobPath(t *testing.T) {
	s := openStore(t)
	data := []byte("%PDF-1.7\nnot really a pdf, but bytes are bytes\n")
	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Receive(bytes.NewReader(data), 1<<20); err != nil {
		t.Fatal(err)
	}
	tmpPath := u.Path()
	dst, err := u.Commit("job-1")
	if err != nil {
		t.Fatal(err)
	}
	if dst != s.BlobPath("job-1") {
		t.Errorf("Commit returned %s, want BlobPath %s", dst, s.BlobPath("job-1"))
	}
	if got, err := os.ReadFile(s.BlobPath("job-1")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("blob: %q, %v; want %q", got, err, data)
	}
	if _, err := os.Stat(tmpPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file after Commit: %v, want it gone", err)
	}
	if tmp := tmpFiles(t, s); len(tmp) != 0 {
		t.Errorf("TmpFiles after Commit = %v, want none", tmp)
	}
	u.Abort() // after Commit: does nothing
	if _, err := os.Stat(s.BlobPath("job-1")); err != nil {
		t.Errorf("blob after Abort-after-Commit: %v, want it kept", err)
	}
	if ids := blobs(t, s); !slices.Equal(ids, []string{"job-1"}) {
		t.Errorf("Blobs = %v, want [job-1]", ids)
	}
	must(t, s.RemoveBlob("job-1"))
	must(t, s.RemoveBlob("job-1")) // removing what is gone is not an error
	if ids := blobs(t, s); len(ids) != 0 {
		t.Errorf("Blobs after RemoveBlob = %v, want none", ids)
	}
}

func TestOpenRemovesLeftoverUploads(t *testing.T) {
	s := openStore(t)
	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Receive(bytes.NewReader([]byte("half an upload")), 0); err != nil {
		t.Fatal(err)
	}
	// A directory too, as a crashed process might have left anything.
	must(t, os.MkdirAll(filepath.Join(s.tmp, "junk", "deeper"), 0o750))
	must(t, os.WriteFile(filepath.Join(s.tmp, "junk", "deeper", "f"), []byte("x"), 0o600))
	if tmp := tmpFiles(t, s); len(tmp) != 2 {
		t.Fatalf("TmpFiles before restart = %v, want 2 entries", tmp)
	}
	// A committed blob is not an upload in progress: it must survive.
	u2, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u2.Receive(bytes.NewReader([]byte("kept")), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := u2.Commit("kept-job"); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s)
	if tmp := tmpFiles(t, s); len(tmp) != 0 {
		t.Errorf("TmpFiles after reopen = %v, want none", tmp)
	}
	if ids := blobs(t, s); !slices.Equal(ids, []string{"kept-job"}) {
		t.Errorf("Blobs after reopen = %v, want [kept-job]", ids)
	}
}

func TestEverythingSurvivesReopen(t *testing.T) {
	s := openStore(t)
	const job = "job-r"
	evs := []*messages.JobEvent{created(job, "acct", 1), planned(job, 2, 2), chunkDone(job, 3, 0)}
	out := &messages.ChunkOutput{Index: 0, FirstPage: 1, LastPage: 1, Output: []byte(`{"pages":[]}`)}
	b := s.NewBatch()
	for _, ev := range evs {
		b.AppendJobEvent(ev)
	}
	b.PutChunkOutput(job, out)
	b.PutAccount(&messages.Account{Id: "acct", Number: 7})
	b.PutLedgerEntry(&messages.LedgerEntry{Seq: 9, AccountId: "acct", Kind: messages.LedgerKind_LEDGER_KIND_GRANT, Amount: 3, GrantId: "g"})
	b.PutBalance(&messages.Balance{AccountId: "acct", Granted: 3})
	must(t, b.Commit())
	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Receive(bytes.NewReader([]byte("%PDF-")), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(job); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s)
	if diff := cmp.Diff(evs, mustJobEvents(t, s, job), protocmp.Transform()); diff != "" {
		t.Errorf("events after reopen (-want +got):\n%s", diff)
	}
	outs, err := s.ChunkOutputs(job)
	if err != nil || !cmp.Equal(map[int32]*messages.ChunkOutput{0: out}, outs, protocmp.Transform()) {
		t.Errorf("outputs after reopen = %v, %v", outs, err)
	}
	if ids, err := s.ActiveJobs(); err != nil || !slices.Equal(ids, []string{job}) {
		t.Errorf("ActiveJobs after reopen = %v, %v", ids, err)
	}
	var listed []string
	must(t, s.JobIDs("acct", "", func(id string) (bool, error) { listed = append(listed, id); return true, nil }))
	if !slices.Equal(listed, []string{job}) {
		t.Errorf("JobIDs after reopen = %v", listed)
	}
	if n, err := s.AccountSeq(); err != nil || n != 7 {
		t.Errorf("AccountSeq after reopen = %d, %v; want 7", n, err)
	}
	if n, err := s.LedgerSeq(); err != nil || n != 9 {
		t.Errorf("LedgerSeq after reopen = %d, %v; want 9", n, err)
	}
	if bal, err := s.Balance("acct"); err != nil || bal.GetGranted() != 3 {
		t.Errorf("Balance after reopen = %v, %v", bal, err)
	}
	if got, err := os.ReadFile(s.BlobPath(job)); err != nil || string(got) != "%PDF-" {
		t.Errorf("blob after reopen = %q, %v", got, err)
	}
}

func TestCorruptValue(t *testing.T) {
	s := openStore(t)
	b := s.NewBatch()
	b.set(eventKey("j", 1), []byte{0xff, 0xff, 0xff}) // not a protobuf
	b.set(balanceKey("a"), []byte{0x0a})              // truncated field
	b.set(ledgerSeqKey, []byte{1, 2, 3})              // counter of the wrong width
	must(t, b.Commit())
	if _, err := s.JobEvents("j"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("JobEvents of a corrupt log: %v, want ErrCorrupt", err)
	}
	if _, err := s.Balances(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Balances with a corrupt value: %v, want ErrCorrupt", err)
	}
	if _, err := s.LedgerSeq(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("LedgerSeq of the wrong width: %v, want ErrCorrupt", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		in, want []byte
	}{
		{[]byte("ev/a/"), []byte("ev/a0")},
		{[]byte{'a', 0xff}, []byte{'b'}},
		{[]byte{0xff, 0xff}, nil},
	}
	for _, tc := range tests {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func tmpFiles(tb testing.TB, s *Store) []string {
	tb.Helper()
	names, err := s.TmpFiles()
	if err != nil {
		tb.Fatal(err)
	}
	return names
}

func blobs(tb testing.TB, s *Store) []string {
	tb.Helper()
	ids, err := s.Blobs()
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
