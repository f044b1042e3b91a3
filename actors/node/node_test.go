package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/text"
	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// The real PDFs these tests use (see bench/corpus/MANIFEST.tsv).
const (
	pdf3Pages      = "octave-refcard-3p.pdf"
	pdf4Pages      = "annapurna-features-4p.pdf"
	pdf16Pages     = "pxfonts-doc-16p.pdf"
	pdf26Pages     = "camlidl-manual-26p.pdf"
	pdfEncrypted   = "gofpdf-protected-1p.pdf"
	faultyName     = "faulty"
	waitTimeout    = 30 * time.Second
	pollInterval   = 10 * time.Millisecond
	defaultCredits = 1000
)

// corpusFile is the path of a file of the real-PDF corpus. Without the
// corpus the test is skipped, unless CI is set: there it must not be missing.
func corpusFile(tb testing.TB, name string) string {
	tb.Helper()
	dir := os.Getenv("QUIRE_CORPUS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			tb.Fatalf("no QUIRE_CORPUS and no home directory: %v", err)
		}
		dir = filepath.Join(home, ".cache", "quire-corpus")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("corpus file %s is missing (%v): run `make corpus` (bench/corpus/fetch-corpus.sh %s) or set QUIRE_CORPUS", name, err, dir)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return p
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// receive waits for a value on ch, failing the test after waitTimeout.
func receive[T any](tb testing.TB, what string, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		tb.Fatalf("gave up after %s waiting for %s", waitTimeout, what)
	}
	panic("unreachable")
}

// faultFunc decides what happens to one call of the faulty extractor: it may
// return an error, panic or block. A nil error hands the call to the real
// text extractor.
type faultFunc func(ctx context.Context, req extract.Request, call int) error

// faultyExtractor is the fault-injecting fake of the Extractor seam: it
// wraps the real text extractor and counts the calls for each chunk.
type faultyExtractor struct {
	real  extract.Extractor
	fault atomic.Pointer[faultFunc]
	mu    struct {
		sync.Mutex
		calls map[string]int // job/first page -> calls
	}
}

var _ extract.Extractor = (*faultyExtractor)(nil)

func newFaulty(real extract.Extractor, f faultFunc) *faultyExtractor {
	x := &faultyExtractor{real: real}
	x.mu.calls = map[string]int{}
	x.setFault(f)
	return x
}

func (x *faultyExtractor) setFault(f faultFunc) { x.fault.Store(&f) }

func (x *faultyExtractor) Name() string { return faultyName }

func (x *faultyExtractor) Extract(ctx context.Context, req extract.Request) (extract.Result, error) {
	x.mu.Lock()
	key := fmt.Sprintf("%s/%d", req.JobID, req.FirstPage)
	x.mu.calls[key]++
	call := x.mu.calls[key]
	x.mu.Unlock()
	if f := *x.fault.Load(); f != nil {
		if err := f(ctx, req, call); err != nil {
			return extract.Result{}, err
		}
	}
	return x.real.Extract(ctx, req)
}

// calls is how often the chunk of job starting at firstPage was attempted.
func (x *faultyExtractor) calls(job string, firstPage int) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.mu.calls[fmt.Sprintf("%s/%d", job, firstPage)]
}

// env is a store, a PDF engine and the extractors that nodes under test share.
type env struct {
	tb     testing.TB
	store  *persistence.Store
	engine *pdf.Engine
	text   *text.Extractor
	faulty *faultyExtractor
}

func newEnv(tb testing.TB, fault faultFunc) *env {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	store, err := persistence.Open(tb.TempDir(), log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	engine, err := pdf.NewEngine(pdf.Config{Instances: 4, CacheDir: pdf.DefaultCacheDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = engine.Close() })
	tx := text.New(engine)
	return &env{tb: tb, store: store, engine: engine, text: tx, faulty: newFaulty(tx, fault)}
}

// start starts a node over the env; the node is closed when the test ends
// (Close twice is harmless). tweak may change the configuration.
func (e *env) start(tweak func(*node.Config)) *node.Node {
	e.tb.Helper()
	cfg := node.Config{
		Name:        "node-test",
		Store:       e.store,
		Engine:      e.engine,
		Extractors:  extract.NewRegistry(e.text, e.faulty),
		Concurrency: 4,
		RetryBase:   10 * time.Millisecond,
		RetryMax:    100 * time.Millisecond,
		Log:         slog.New(slog.DiscardHandler),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := node.Start(e.tb.Context(), cfg)
	if err != nil {
		e.tb.Fatalf("node.Start: %v", err)
	}
	var once sync.Once
	e.tb.Cleanup(func() { once.Do(n.Close) })
	return n
}

func createAccount(tb testing.TB, n *node.Node, credits int64) *messages.Account {
	tb.Helper()
	a, err := n.CreateAccount(tb.Context(), "test account", credits)
	if err != nil {
		tb.Fatal(err)
	}
	return a.Account
}

// submit uploads the file at path the way the HTTP API does and submits it.
func submit(tb testing.TB, n *node.Node, acct *messages.Account, path, extractor string, chunkPages int) (*job.State, error) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	up, err := n.NewUpload()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := up.Receive(f, 64<<20); err != nil {
		up.Abort()
		tb.Fatal(err)
	}
	return n.Submit(tb.Context(), node.Submission{
		Account: acct, Upload: up, FileName: filepath.Base(path), Extractor: extractor, ChunkPages: chunkPages,
	})
}

func mustSubmit(tb testing.TB, n *node.Node, acct *messages.Account, path, extractor string, chunkPages int) *job.State {
	tb.Helper()
	st, err := submit(tb, n, acct, path, extractor, chunkPages)
	if err != nil {
		tb.Fatalf("Submit(%s): %v", filepath.Base(path), err)
	}
	return st
}

func jobState(tb testing.TB, n *node.Node, acct *messages.Account, id string) *job.State {
	tb.Helper()
	st, err := n.Job(tb.Context(), acct.GetId(), id)
	if err != nil {
		tb.Fatalf("Job(%s): %v", id, err)
	}
	return st
}

// waitEnded waits until the job is terminal and its actor has let go of it
// (its PDF removed, no chunk of it running or waiting on the node).
func waitEnded(tb testing.TB, n *node.Node, acct *messages.Account, id string) *job.State {
	tb.Helper()
	var st *job.State
	waitFor(tb, "job "+id+" to end", func() bool {
		st = jobState(tb, n, acct, id)
		return st.Status.Terminal()
	})
	waitFor(tb, "the PDF of job "+id+" to be removed", func() bool {
		_, err := os.Stat(n.Store().BlobPath(id))
		return errors.Is(err, os.ErrNotExist)
	})
	waitIdle(tb, n)
	return st
}

// waitIdle waits until no chunk runs or waits on the node.
func waitIdle(tb testing.TB, n *node.Node) {
	tb.Helper()
	waitFor(tb, "the node's chunk slots to be free", func() bool {
		s, err := n.Slots(tb.Context())
		return err == nil && s.GetBusy() == 0 && s.GetQueued() == 0
	})
}

func jobEvents(tb testing.TB, n *node.Node, id string) []*messages.JobEvent {
	tb.Helper()
	evs, err := n.Store().JobEvents(id)
	if err != nil {
		tb.Fatal(err)
	}
	return evs
}

// credits is a job's movements as the ledger recorded them.
type credits struct {
	Reserved, Charged, Refunded int64
}

// checkCredits checks the job's ledger entries and its JobFinished event
// against want, and the whole ledger with Verify.
func checkCredits(tb testing.TB, n *node.Node, id string, want credits) {
	tb.Helper()
	store := n.Store()
	amount := func(kind messages.LedgerKind) int64 {
		e, err := store.JobLedgerEntry(id, kind)
		if err != nil {
			tb.Fatalf("job %s: %v entry: %v", id, kind, err)
		}
		return e.GetAmount()
	}
	got := credits{
		Reserved: amount(messages.LedgerKind_LEDGER_KIND_RESERVE),
		Charged:  amount(messages.LedgerKind_LEDGER_KIND_CHARGE),
		Refunded: amount(messages.LedgerKind_LEDGER_KIND_REFUND),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("job %s ledger entries (-want +got):\n%s", id, diff)
	}
	var fin *messages.JobFinished
	for _, ev := range jobEvents(tb, n, id) {
		if f := ev.GetFinished(); f != nil {
			if fin != nil {
				tb.Errorf("job %s has two JobFinished events", id)
			}
			fin = f
		}
	}
	if fin == nil {
		tb.Fatalf("job %s has no JobFinished event", id)
	}
	if fin.GetCreditsCharged() != want.Charged || fin.GetCreditsRefunded() != want.Refunded {
		tb.Errorf("job %s JobFinished says charged %d, refunded %d; want %d, %d",
			id, fin.GetCreditsCharged(), fin.GetCreditsRefunded(), want.Charged, want.Refunded)
	}
	if err := ledger.Verify(store); err != nil {
		tb.Errorf("ledger.Verify: %v", err)
	}
}

func checkBalance(tb testing.TB, n *node.Node, acct *messages.Account, want *messages.Balance) {
	tb.Helper()
	res, err := n.Credits(tb.Context(), acct.GetId(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	want.AccountId = acct.GetId()
	if diff := cmp.Diff(want, res.GetBalance(), protocmp.Transform()); diff != "" {
		tb.Errorf("balance (-want +got):\n%s", diff)
	}
}

// checkOutputs checks that the job's stored outputs are exactly the chunks
// done, and that each holds the real text of its pages, page by page.
func checkOutputs(tb testing.TB, n *node.Node, e *env, acct *messages.Account, id, path string) {
	tb.Helper()
	res, err := n.Result(tb.Context(), acct.GetId(), id)
	if err != nil {
		tb.Fatal(err)
	}
	texts, err := e.engine.PageTexts(tb.Context(), path, 1, int(res.State.Created.GetPages()))
	if err != nil {
		tb.Fatal(err)
	}
	for i := range texts {
		texts[i] = text.Normalize(texts[i]) // as the text extractor gives them
	}
	for _, c := range res.State.Chunks {
		out, ok := res.Outputs[c.Range.GetIndex()]
		if c.Status != job.ChunkDone {
			if ok {
				tb.Errorf("chunk %d is %s but has an output", c.Range.GetIndex(), c.Status)
			}
			continue
		}
		if !ok {
			tb.Errorf("chunk %d is done but has no output", c.Range.GetIndex())
			continue
		}
		if out.GetFirstPage() != c.Range.GetFirstPage() || out.GetLastPage() != c.Range.GetLastPage() {
			tb.Errorf("chunk %d output covers pages %d-%d, want %d-%d", c.Range.GetIndex(),
				out.GetFirstPage(), out.GetLastPage(), c.Range.GetFirstPage(), c.Range.GetLastPage())
		}
		var got text.Output
		if err := json.Unmarshal(out.GetOutput(), &got); err != nil {
			tb.Fatalf("chunk %d output is not JSON: %v", c.Range.GetIndex(), err)
		}
		var want text.Output
		for p := c.Range.GetFirstPage(); p <= c.Range.GetLastPage(); p++ {
			want.Pages = append(want.Pages, text.Page{Page: int(p), Text: texts[p-1]})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			tb.Errorf("chunk %d output (-want +got):\n%s", c.Range.GetIndex(), diff)
		}
		for _, p := range got.Pages {
			if strings.TrimSpace(p.Text) == "" {
				tb.Errorf("chunk %d: page %d has no text", c.Range.GetIndex(), p.Page)
			}
		}
	}
	if len(res.Outputs) != res.State.Counts().Done {
		tb.Errorf("%d outputs stored for %d chunks done", len(res.Outputs), res.State.Counts().Done)
	}
}

// checkClean checks that the node keeps no file it should not: no upload in
// the temporary area, no PDF of a job that is not running.
func checkClean(tb testing.TB, n *node.Node) {
	tb.Helper()
	tmp, err := n.Store().TmpFiles()
	if err != nil || len(tmp) != 0 {
		tb.Errorf("TmpFiles = %v, %v; want none", tmp, err)
	}
	active, err := n.Store().ActiveJobs()
	if err != nil {
		tb.Fatal(err)
	}
	blobs, err := n.Store().Blobs()
	if err != nil {
		tb.Fatal(err)
	}
	if diff := cmp.Diff(active, blobs); diff != "" {
		tb.Errorf("PDFs kept are not those of the running jobs (-running +blobs):\n%s", diff)
	}
}

func TestTextJobCompletes(t *testing.T) {
	path := corpusFile(t, pdf26Pages)
	e := newEnv(t, nil)
	n := e.start(nil)
	acct := createAccount(t, n, 100)

	st := mustSubmit(t, n, acct, path, "", 5) // "" is the text extractor
	if st.Created.GetPages() != 26 || len(st.Chunks) != 6 || st.Created.GetExtractor() != text.Name {
		t.Fatalf("submitted job: %d pages, %d chunks, extractor %q; want 26, 6, text",
			st.Created.GetPages(), len(st.Chunks), st.Created.GetExtractor())
	}
	if st.Created.GetCreditsReserved() != 26 {
		t.Errorf("reserved %d credits, want 26", st.Created.GetCreditsReserved())
	}

	st = waitEnded(t, n, acct, st.ID)
	if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Fatalf("status %s, want completed (chunks %+v)", st.Status.Label(), st.Counts())
	}
	if diff := cmp.Diff(job.Counts{Total: 6, Done: 6}, st.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if st.Progress() != 1 {
		t.Errorf("progress %v, want 1", st.Progress())
	}
	for _, c := range st.Chunks {
		if c.Attempts != 1 || c.Failures != 0 || c.Node != "node-test" {
			t.Errorf("chunk %d: %d attempts, %d failures, node %q; want 1, 0, node-test", c.Range.GetIndex(), c.Attempts, c.Failures, c.Node)
		}
	}
	checkOutputs(t, n, e, acct, st.ID, path)
	checkCredits(t, n, st.ID, credits{Reserved: 26, Charged: 26, Refunded: 0})
	checkBalance(t, n, acct, &messages.Balance{Granted: 100, Charged: 26})
	checkClean(t, n)
}

func TestPanickingChunkFailsAfterMaxAttempts(t *testing.T) {
	path := corpusFile(t, pdf16Pages)
	e := newEnv(t, func(_ context.Context, req extract.Request, _ int) error {
		if req.FirstPage == 5 {
			panic("the extractor broke on page 5")
		}
		return nil
	})
	n := e.start(nil)
	acct := createAccount(t, n, 100)

	st := mustSubmit(t, n, acct, path, faultyName, 4) // chunks 1-4, 5-8, 9-12, 13-16
	st = waitEnded(t, n, acct, st.ID)
	if st.Status != messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED {
		t.Fatalf("status %s, want partially_completed", st.Status.Label())
	}
	bad := st.Chunks[1]
	if bad.Status != job.ChunkFailed || bad.Attempts != node.DefaultMaxAttempts || bad.Failures != node.DefaultMaxAttempts {
		t.Errorf("chunk 1: %s after %d attempts and %d failures; want failed after %d",
			bad.Status, bad.Attempts, bad.Failures, node.DefaultMaxAttempts)
	}
	if !strings.Contains(bad.Error, "the extractor broke on page 5") {
		t.Errorf("chunk 1 error %q does not say what happened", bad.Error)
	}
	if got := e.faulty.calls(st.ID, 5); got != node.DefaultMaxAttempts {
		t.Errorf("chunk 1 was attempted %d times, want %d", got, node.DefaultMaxAttempts)
	}
	checkOnlyChunk1Failed(t, n, e, acct, st, path)
	checkClean(t, n)
}

func TestTransientFailuresAreRetried(t *testing.T) {
	path := corpusFile(t, pdf4Pages)
	e := newEnv(t, func(_ context.Context, req extract.Request, call int) error {
		if req.FirstPage == 2 && call <= 2 {
			return fmt.Errorf("flaky failure %d", call)
		}
		return nil
	})
	n := e.start(nil)
	acct := createAccount(t, n, 100)

	st := waitEnded(t, n, acct, mustSubmit(t, n, acct, path, faultyName, 1).ID)
	if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Fatalf("status %s, want completed", st.Status.Label())
	}
	c := st.Chunks[1]
	if c.Status != job.ChunkDone || c.Attempts != 3 || c.Failures != 2 || c.Error != "" {
		t.Errorf("chunk 1: %s, %d attempts, %d failures, error %q; want done, 3, 2, none", c.Status, c.Attempts, c.Failures, c.Error)
	}
	if got := e.faulty.calls(st.ID, 2); got != 3 {
		t.Errorf("chunk 1 was attempted %d times, want 3", got)
	}
	var failures []string
	for _, ev := range jobEvents(t, n, st.ID) {
		if f := ev.GetChunkFailed(); f != nil {
			if f.GetPermanent() {
				t.Errorf("a transient failure was recorded as permanent: %v", f)
			}
			failures = append(failures, fmt.Sprintf("%d/%d: %s", f.GetIndex(), f.GetAttempt(), f.GetError()))
		}
	}
	if diff := cmp.Diff([]string{"1/1: flaky failure 1", "1/2: flaky failure 2"}, failures); diff != "" {
		t.Errorf("ChunkFailed events (-want +got):\n%s", diff)
	}
	checkOutputs(t, n, e, acct, st.ID, path)
	checkCredits(t, n, st.ID, credits{Reserved: 4, Charged: 4})
	checkBalance(t, n, acct, &messages.Balance{Granted: 100, Charged: 4})
}

// Rate-limited attempts do not use up the chunk's attempts, and the retry
// waits at least the delay the service asked for.
func TestRateLimitedAttemptsWaitAndDoNotCount(t *testing.T) {
	path := corpusFile(t, pdf4Pages)
	const asked = 150 * time.Millisecond
	var mu sync.Mutex
	var calls []time.Time
	e := newEnv(t, func(_ context.Context, req extract.Request, call int) error {
		if req.FirstPage != 2 {
			return nil
		}
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
		if call <= 5 { // more than MaxAttempts (3)
			return extract.RateLimited(fmt.Errorf("429 slow down %d", call), asked)
		}
		return nil
	})
	n := e.start(nil)
	acct := createAccount(t, n, 100)

	st := waitEnded(t, n, acct, mustSubmit(t, n, acct, path, faultyName, 1).ID)
	if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Fatalf("status %s, want completed (rate limits must not use up attempts)", st.Status.Label())
	}
	c := st.Chunks[1]
	if c.Attempts != 6 || c.RateLimited != 5 || c.Status != job.ChunkDone {
		t.Errorf("chunk 1: %s after %d attempts, %d rate-limited; want done, 6, 5", c.Status, c.Attempts, c.RateLimited)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < asked {
			t.Errorf("attempt %d came %s after the previous one; the service asked for at least %s", i+1, gap, asked)
		}
	}
	for _, ev := range jobEvents(t, n, st.ID) {
		if f := ev.GetChunkFailed(); f != nil && !f.GetRateLimited() {
			t.Errorf("failure not marked rate-limited: %v", f)
		}
	}
	checkCredits(t, n, st.ID, credits{Reserved: 4, Charged: 4})
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	path := corpusFile(t, pdf4Pages)
	e := newEnv(t, func(_ context.Context, req extract.Request, _ int) error {
		if req.FirstPage == 3 {
			return extract.Permanent(errors.New("page 3 is not supported"))
		}
		return nil
	})
	n := e.start(nil)
	acct := createAccount(t, n, 100)

	st := waitEnded(t, n, acct, mustSubmit(t, n, acct, path, faultyName, 1).ID)
	if st.Status != messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED {
		t.Fatalf("status %s, want partially_completed", st.Status.Label())
	}
	c := st.Chunks[2]
	if c.Status != job.ChunkFailed || c.Attempts != 1 || c.Failures != 1 || c.Error != "page 3 is not supported" {
		t.Errorf("chunk 2: %s, %d attempts, %d failures, error %q; want failed at once", c.Status, c.Attempts, c.Failures, c.Error)
	}
	if got := e.faulty.calls(st.ID, 3); got != 1 {
		t.Errorf("chunk 2 was attempted %d times, want 1", got)
	}
	checkOutputs(t, n, e, acct, st.ID, path)
	checkCredits(t, n, st.ID, credits{Reserved: 4, Charged: 3, Refunded: 1})
	checkBalance(t, n, acct, &messages.Balance{Granted: 100, Charged: 3})
}

func TestEveryChunkFailing(t *testing.T) {
	path := corpusFile(t, pdf3Pages)
	e := newEnv(t, func(context.Context, extract.Request, int) error {
		return extract.Permanent(errors.New("nothing works"))
	})
	n := e.start(nil)
	acct := createAccount(t, n, 10)
	st := waitEnded(t, n, acct, mustSubmit(t, n, acct, path, faultyName, 2).ID)
	if st.Status != messages.JobStatus_JOB_STATUS_FAILED {
		t.Fatalf("status %s, want failed", st.Status.Label())
	}
	checkCredits(t, n, st.ID, credits{Reserved: 3, Charged: 0, Refunded: 3})
	checkBalance(t, n, acct, &messages.Balance{Granted: 10})
}

func TestChunkTimeoutIsRetried(t *testing.T) {
	path := corpusFile(t, pdf4Pages)
	tests := []struct {
		name string
		// overrun is what the first attempt of chunk 1 does once its deadline passed.
		overrun func(ctx context.Context, req extract.Request) error
	}{
		{"the extractor gives up at the deadline", func(ctx context.Context, _ extract.Request) error { return ctx.Err() }},
		{"the extractor answers after the deadline", func(context.Context, extract.Request) error { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			deadlineErr := make(chan error, 1)
			e := newEnv(t, func(ctx context.Context, req extract.Request, call int) error {
				if req.FirstPage == 2 && call == 1 {
					<-ctx.Done()
					deadlineErr <- ctx.Err()
					return tc.overrun(ctx, req)
				}
				return nil
			})
			n := e.start(func(c *node.Config) { c.ChunkTimeout = 2 * time.Second })
			acct := createAccount(t, n, 100)
			st := mustSubmit(t, n, acct, path, faultyName, 1)
			if err := receive(t, "the first attempt's deadline", deadlineErr); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the slow attempt's context ended with %v, want a deadline", err)
			}
			st = waitEnded(t, n, acct, st.ID)
			if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
				t.Fatalf("status %s, want completed", st.Status.Label())
			}
			c := st.Chunks[1]
			if c.Status != job.ChunkDone || c.Attempts != 2 || c.Failures != 1 {
				t.Errorf("chunk 1: %s, %d attempts, %d failures; want done, 2, 1", c.Status, c.Attempts, c.Failures)
			}
			var failed []*messages.ChunkFailed
			for _, ev := range jobEvents(t, n, st.ID) {
				if f := ev.GetChunkFailed(); f != nil {
					failed = append(failed, f)
				}
			}
			if len(failed) != 1 || failed[0].GetIndex() != 1 || failed[0].GetPermanent() ||
				!strings.Contains(failed[0].GetError(), "took longer than 2s") {
				t.Errorf("ChunkFailed events %v; want one transient timeout of chunk 1", failed)
			}
			checkOutputs(t, n, e, acct, st.ID, path)
			checkCredits(t, n, st.ID, credits{Reserved: 4, Charged: 4})
		})
	}
}

func TestCancelRunningJob(t *testing.T) {
	path := corpusFile(t, pdf4Pages)
	blocked := make(chan struct{}, 1)
	released := make(chan error, 1)
	e := newEnv(t, func(ctx context.Context, req extract.Request, _ int) error {
		if req.FirstPage == 3 {
			blocked <- struct{}{}
			<-ctx.Done() // only cancellation ends it
			released <- ctx.Err()
			return ctx.Err()
		}
		return nil
	})
	n := e.start(func(c *node.Config) { c.ChunkTimeout = time.Hour })
	acct := createAccount(t, n, 50)
	st := mustSubmit(t, n, acct, path, faultyName, 1)

	receive(t, "chunk 2 to block", blocked)
	waitFor(t, "the other three chunks to be done", func() bool {
		return jobState(t, n, acct, st.ID).Counts().Done == 3
	})
	running := jobState(t, n, acct, st.ID)
	if running.Status != messages.JobStatus_JOB_STATUS_RUNNING || running.Chunks[2].Status != job.ChunkRunning {
		t.Fatalf("before cancel: job %s, chunk 2 %s; want running, running", running.Status.Label(), running.Chunks[2].Status)
	}

	st, err := n.Cancel(t.Context(), acct.GetId(), st.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if st.Status != messages.JobStatus_JOB_STATUS_CANCELLED {
		t.Errorf("Cancel answered status %s, want cancelled", st.Status.Label())
	}
	if err := receive(t, "the blocked extractor's context to be cancelled", released); !errors.Is(err, context.Canceled) {
		t.Errorf("the blocked extractor's context ended with %v, want context.Canceled", err)
	}
	st = waitEnded(t, n, acct, st.ID)
	if st.Status != messages.JobStatus_JOB_STATUS_CANCELLED || !st.CancelRequested {
		t.Errorf("status %s (cancel requested %v), want cancelled", st.Status.Label(), st.CancelRequested)
	}
	if st.Chunks[2].Status == job.ChunkDone {
		t.Errorf("the cancelled chunk is recorded as done")
	}
	if _, err := n.Cancel(t.Context(), acct.GetId(), st.ID); !errors.Is(err, node.ErrJobFinished) {
		t.Errorf("second Cancel: %v, want ErrJobFinished", err)
	}
	// The cancelled attempt's late answer changes nothing: the log ends with
	// JobFinished.
	evs := jobEvents(t, n, st.ID)
	if evs[len(evs)-1].GetFinished() == nil {
		t.Errorf("the log does not end with JobFinished: %v", evs[len(evs)-1])
	}
	checkOutputs(t, n, e, acct, st.ID, path)
	checkCredits(t, n, st.ID, credits{Reserved: 4, Charged: 3, Refunded: 1})
	checkBalance(t, n, acct, &messages.Balance{Granted: 50, Charged: 3})
	checkClean(t, n)
}

func TestCancelQueuedJob(t *testing.T) {
	path := corpusFile(t, pdf3Pages)
	blocked := make(chan struct{}, 1)
	e := newEnv(t, func(ctx context.Context, req extract.Request, _ int) error {
		blocked <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	n := e.start(func(c *node.Config) { c.Concurrency = 1; c.ChunkTimeout = time.Hour })
	acct := createAccount(t, n, 50)
	hog := mustSubmit(t, n, acct, path, faultyName, 3) // one chunk, holds the only slot
	receive(t, "the first job to take the slot", blocked)
	queued := mustSubmit(t, n, acct, path, text.Name, 1) // three chunks, all waiting
	waitFor(t, "three chunks waiting", func() bool {
		s, err := n.Slots(t.Context())
		return err == nil && s.GetBusy() == 1 && s.GetQueued() == 3
	})

	st, err := n.Cancel(t.Context(), acct.GetId(), queued.ID)
	if err != nil || st.Status != messages.JobStatus_JOB_STATUS_CANCELLED {
		t.Fatalf("Cancel of the queued job = %v, %v; want cancelled", st.Status.Label(), err)
	}
	// Its waiting chunks left the queue; the running job keeps its slot.
	waitFor(t, "the cancelled job's chunks to leave the queue", func() bool {
		s, err := n.Slots(t.Context())
		return err == nil && s.GetBusy() == 1 && s.GetQueued() == 0
	})
	for _, c := range jobState(t, n, acct, queued.ID).Chunks {
		if c.Attempts != 0 {
			t.Errorf("chunk %d of the cancelled job was attempted %d times", c.Range.GetIndex(), c.Attempts)
		}
	}
	checkCredits(t, n, queued.ID, credits{Reserved: 3, Charged: 0, Refunded: 3})

	if _, err := n.Cancel(t.Context(), acct.GetId(), hog.ID); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, n, acct, hog.ID)
	checkCredits(t, n, hog.ID, credits{Reserved: 3, Charged: 0, Refunded: 3})
	checkBalance(t, n, acct, &messages.Balance{Granted: 50})
	checkClean(t, n)
}

func TestNodeRestartMidJob(t *testing.T) {
	path := corpusFile(t, pdf16Pages)
	var blocked atomic.Int32
	stopped := make(chan error, 16)
	release := make(chan struct{})
	e := newEnv(t, func(ctx context.Context, req extract.Request, _ int) error {
		if req.FirstPage <= 4 {
			return nil // chunks 0 and 1 finish before the restart
		}
		blocked.Add(1)
		select {
		case <-ctx.Done():
			stopped <- ctx.Err()
			return ctx.Err()
		case <-release:
			return nil
		}
	})
	first := e.start(func(c *node.Config) { c.Concurrency = 2; c.ChunkTimeout = time.Hour })
	acct := createAccount(t, first, 100)
	st := mustSubmit(t, first, acct, path, faultyName, 2) // 8 chunks of 2 pages
	waitFor(t, "two chunks done and two blocked", func() bool {
		return jobState(t, first, acct, st.ID).Counts().Done == 2 && blocked.Load() == 2
	})

	first.Close()
	// Closing stops every actor: the attempts in flight are cancelled, and
	// no waiting chunk is started on the way out.
	for range 2 {
		if err := receive(t, "an attempt in flight to be cancelled by Close", stopped); !errors.Is(err, context.Canceled) {
			t.Errorf("attempt in flight ended with %v, want context.Canceled", err)
		}
	}
	if got := blocked.Load(); got != 2 {
		t.Errorf("%d attempts started while the node closed, want none", got-2)
	}
	first.Close() // again: nothing happens

	e.faulty.setFault(nil)
	close(release) // were anything of the first node still running, it would go on now
	second := e.start(nil)
	st = waitEnded(t, second, acct, st.ID)
	if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Fatalf("status %s, want completed", st.Status.Label())
	}

	// Every chunk's output is there once, and the log records each chunk done once.
	done := map[int32]int{}
	finished := 0
	for _, ev := range jobEvents(t, second, st.ID) {
		if d := ev.GetChunkDone(); d != nil {
			done[d.GetIndex()]++
		}
		if ev.GetFinished() != nil {
			finished++
		}
	}
	want := map[int32]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1}
	if diff := cmp.Diff(want, done); diff != "" {
		t.Errorf("ChunkDone events per chunk (-want +got):\n%s", diff)
	}
	if finished != 1 {
		t.Errorf("%d JobFinished events, want 1", finished)
	}
	for _, i := range []int{0, 1} {
		if c := st.Chunks[i]; c.Attempts != 1 {
			t.Errorf("chunk %d done before the restart has %d attempts, want 1", i, c.Attempts)
		}
	}
	checkOutputs(t, second, e, acct, st.ID, path)
	checkCredits(t, second, st.ID, credits{Reserved: 16, Charged: 16})
	checkBalance(t, second, acct, &messages.Balance{Granted: 100, Charged: 16})
	checkClean(t, second)
	ledgerEntries, err := second.Store().LedgerEntries(acct.GetId(), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledgerEntries) != 4 { // initial grant, reserve, charge, refund
		t.Errorf("%d ledger entries, want 4: %v", len(ledgerEntries), ledgerEntries)
	}
}

func TestSubmitRefusesBadInput(t *testing.T) {
	encrypted := corpusFile(t, pdfEncrypted)
	real := corpusFile(t, pdf3Pages)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	whole, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      string
		extractor string
		chunk     int
		want      error
	}{
		{"not a PDF", write("notes.txt", []byte("these are plain notes, not a PDF\n")), "", 0, pdf.ErrNotPDF},
		{"empty", write("empty.pdf", nil), "", 0, pdf.ErrEmpty},
		{"encrypted", encrypted, "", 0, pdf.ErrEncrypted},
		{"damaged", write("half.pdf", whole[:len(whole)/2]), "", 0, pdf.ErrUnreadable},
		{"unknown extractor", real, "no-such-extractor", 0, node.ErrInvalidRequest},
		{"chunk pages too large", real, "", node.DefaultMaxChunkPages + 1, node.ErrInvalidRequest},
	}
	e := newEnv(t, nil)
	n := e.start(nil)
	acct := createAccount(t, n, 100)
	seq, err := n.Store().LedgerSeq()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := submit(t, n, acct, tc.path, tc.extractor, tc.chunk)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Submit: %v, want %v", err, tc.want)
			}
			checkClean(t, n)
			if blobs, _ := n.Store().Blobs(); len(blobs) != 0 {
				t.Errorf("Blobs = %v, want none", blobs)
			}
			if got, _ := n.Store().LedgerSeq(); got != seq {
				t.Errorf("the ledger moved (seq %d → %d)", seq, got)
			}
			checkBalance(t, n, acct, &messages.Balance{Granted: 100})
			jobs, _, err := n.Jobs(t.Context(), acct.GetId(), 0, "", 10)
			if err != nil || len(jobs) != 0 {
				t.Errorf("Jobs = %d jobs, %v; want none", len(jobs), err)
			}
		})
	}
}

func TestReservationBeyondBalance(t *testing.T) {
	path := corpusFile(t, pdf4Pages)
	e := newEnv(t, nil)
	n := e.start(nil)
	acct := createAccount(t, n, 3)
	_, err := submit(t, n, acct, path, "", 0)
	if !errors.Is(err, ledger.ErrInsufficientCredits) {
		t.Fatalf("Submit of 4 pages with 3 credits: %v, want ErrInsufficientCredits", err)
	}
	if blobs, err := n.Store().Blobs(); err != nil || len(blobs) != 0 {
		t.Errorf("Blobs = %v, %v; want none", blobs, err)
	}
	checkClean(t, n)
	if active, _ := n.Store().ActiveJobs(); len(active) != 0 {
		t.Errorf("ActiveJobs = %v, want none", active)
	}
	jobs, _, err := n.Jobs(t.Context(), acct.GetId(), 0, "", 10)
	if err != nil || len(jobs) != 0 {
		t.Errorf("Jobs = %d jobs, %v; want none", len(jobs), err)
	}
	checkBalance(t, n, acct, &messages.Balance{Granted: 3})
	if err := ledger.Verify(n.Store()); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// With one more credit the same file is accepted.
	if _, err := n.Grant(t.Context(), acct.GetId(), 1, "top-up", "g1"); err != nil {
		t.Fatal(err)
	}
	st := waitEnded(t, n, acct, mustSubmit(t, n, acct, path, "", 0).ID)
	if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Errorf("status %s, want completed", st.Status.Label())
	}
	checkBalance(t, n, acct, &messages.Balance{Granted: 4, Charged: 4})
}

func TestAccountsAndJobListing(t *testing.T) {
	path := corpusFile(t, pdf3Pages)
	e := newEnv(t, nil)
	n := e.start(nil)
	a, err := n.CreateAccount(t.Context(), "alice", 20)
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.Authenticate(t.Context(), a.APIKey)
	if err != nil || got.GetId() != a.Account.GetId() {
		t.Fatalf("Authenticate(alice's key) = %v, %v", got, err)
	}
	for _, key := range []string{"", "qk_wrong", strings.TrimPrefix(a.APIKey, "qk_"), a.APIKey + "x"} {
		if _, err := n.Authenticate(t.Context(), key); !errors.Is(err, node.ErrUnauthorized) {
			t.Errorf("Authenticate(%q): %v, want ErrUnauthorized", key, err)
		}
	}
	bob := createAccount(t, n, 20)

	var ids []string
	for range 3 {
		st := mustSubmit(t, n, a.Account, path, "", 0)
		waitEnded(t, n, a.Account, st.ID)
		ids = append(ids, st.ID)
	}
	page1, next, err := n.Jobs(t.Context(), a.Account.GetId(), 0, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	page2, last, err := n.Jobs(t.Context(), a.Account.GetId(), 0, next, 2)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, st := range append(page1, page2...) {
		listed = append(listed, st.ID)
	}
	if diff := cmp.Diff([]string{ids[2], ids[1], ids[0]}, listed); diff != "" {
		t.Errorf("jobs newest first over two pages (-want +got):\n%s", diff)
	}
	if last != "" {
		t.Errorf("cursor after the last page = %q, want none", last)
	}
	// Another account's job does not exist for bob.
	if _, err := n.Job(t.Context(), bob.GetId(), ids[0]); !errors.Is(err, node.ErrJobNotFound) {
		t.Errorf("bob reading alice's job: %v, want ErrJobNotFound", err)
	}
	if _, err := n.Cancel(t.Context(), bob.GetId(), ids[0]); !errors.Is(err, node.ErrJobNotFound) {
		t.Errorf("bob cancelling alice's job: %v, want ErrJobNotFound", err)
	}
	if jobs, _, _ := n.Jobs(t.Context(), bob.GetId(), 0, "", 10); len(jobs) != 0 {
		t.Errorf("bob lists %d jobs, want none", len(jobs))
	}
}
