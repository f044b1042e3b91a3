package ledger_test

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// testClock is the ledger's clock in these tests: it moves only when told.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) now() time.Time           { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(d time.Duration)  { c.ms.Add(d.Milliseconds()) }
func (c *testClock) in(d time.Duration) int64 { return c.now().Add(d).UnixMilli() }

// newClockedHarness is a harness whose ledger reads c.
func newClockedHarness(tb testing.TB) (*harness, *testClock) {
	tb.Helper()
	c := &testClock{}
	c.ms.Store(1_700_000_000_000)
	h := newHarness(tb)
	h.stop()
	startClocked(h, c)
	return h, c
}

func startClocked(h *harness, c *testClock) {
	h.tb.Helper()
	s, err := persistence.Open(h.dir, h.log)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.store = s
	h.pid = h.system.Root.Spawn(ledger.Props(s, h.log, c.now))
	h.client = ledger.NewClient(h.system.Root, h.pid, 10*time.Second)
}

func restartClocked(h *harness, c *testClock) {
	h.tb.Helper()
	h.stop()
	startClocked(h, c)
}

func (h *harness) claim(account, key string, sum string) *messages.IdempotencyClaim {
	h.tb.Helper()
	res, err := h.client.ClaimIdempotency(h.tb.Context(), &messages.ClaimIdempotency{AccountId: account, Key: key, RequestSha256: []byte(sum)})
	if err != nil {
		h.tb.Fatalf("ClaimIdempotency(%s, %q): %v", account, key, err)
	}
	return res
}

// keyedReserve reserves job's credits with the idempotency record of key.
func keyedReserve(account, job, key, sum string, amount, expires int64) *messages.ReserveCredits {
	m := reserveMsg(account, job, amount)
	m.Idempotency = &messages.IdempotencyRecord{
		AccountId: account, Key: key, RequestSha256: []byte(sum), JobId: job, ExpiresUnixMs: expires, OwnerNode: "n2",
	}
	return m
}

// TestIdempotencyClaims walks one key through its life: claimed, in use,
// recorded by its reservation, replayed, mismatched, expired and claimed
// again, across a restart of the ledger.
func TestIdempotencyClaims(t *testing.T) {
	h, clock := newClockedHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 100).GetAccount().GetId()
	other := h.createAccount("b", 100).GetAccount().GetId()
	outcome := func(c *messages.IdempotencyClaim) messages.IdempotencyClaim_Outcome { return c.GetOutcome() }

	if got := outcome(h.claim(acct, "k1", "req-1")); got != messages.IdempotencyClaim_OUTCOME_CLAIMED {
		t.Fatalf("first claim: %v, want CLAIMED", got)
	}
	if got := outcome(h.claim(acct, "k1", "req-1")); got != messages.IdempotencyClaim_OUTCOME_IN_PROGRESS {
		t.Errorf("claim while the first is in progress: %v, want IN_PROGRESS", got)
	}
	if got := outcome(h.claim(acct, "k1", "req-other")); got != messages.IdempotencyClaim_OUTCOME_IN_PROGRESS {
		t.Errorf("claim with another request while the first is in progress: %v, want IN_PROGRESS", got)
	}
	// Keys belong to accounts: another account's k1 is its own.
	if got := outcome(h.claim(other, "k1", "req-1")); got != messages.IdempotencyClaim_OUTCOME_CLAIMED {
		t.Errorf("another account's claim of the same key: %v, want CLAIMED", got)
	}

	// The reservation records the key and ends the claim.
	if _, err := h.client.Reserve(ctx, keyedReserve(acct, "job-1", "k1", "req-1", 5, clock.in(time.Hour))); err != nil {
		t.Fatal(err)
	}
	want := &messages.IdempotencyClaim{Outcome: messages.IdempotencyClaim_OUTCOME_REPLAY, JobId: "job-1", OwnerNode: "n2"}
	if diff := cmp.Diff(want, h.claim(acct, "k1", "req-1"), protocmp.Transform()); diff != "" {
		t.Errorf("claim after the reservation (-want +got):\n%s", diff)
	}
	mismatch := h.claim(acct, "k1", "req-other")
	if mismatch.GetOutcome() != messages.IdempotencyClaim_OUTCOME_MISMATCH || mismatch.GetJobId() != "job-1" {
		t.Errorf("claim with another request: %v, want MISMATCH naming job-1", mismatch)
	}

	// Durable: the same after a restart (the claims in memory are gone).
	restartClocked(h, clock)
	if diff := cmp.Diff(want, h.claim(acct, "k1", "req-1"), protocmp.Transform()); diff != "" {
		t.Errorf("claim after a restart (-want +got):\n%s", diff)
	}

	// Expired: as if it never was, for either request; a new job may take it.
	clock.advance(time.Hour)
	if got := outcome(h.claim(acct, "k1", "req-other")); got != messages.IdempotencyClaim_OUTCOME_CLAIMED {
		t.Fatalf("claim of an expired key: %v, want CLAIMED", got)
	}
	if _, err := h.client.Reserve(ctx, keyedReserve(acct, "job-2", "k1", "req-other", 5, clock.in(time.Hour))); err != nil {
		t.Fatalf("reservation with an expired key: %v", err)
	}
	if got := h.claim(acct, "k1", "req-other"); got.GetOutcome() != messages.IdempotencyClaim_OUTCOME_REPLAY || got.GetJobId() != "job-2" {
		t.Errorf("claim after the key was used again: %v, want REPLAY of job-2", got)
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestIdempotencyRelease: a released claim lets the next request go on at
// once; an unreleased one lapses after ClaimTimeout; a refused reservation
// ends its claim; releasing never removes a recorded key.
func TestIdempotencyRelease(t *testing.T) {
	h, clock := newClockedHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 10).GetAccount().GetId()

	h.claim(acct, "k", "r")
	if err := h.client.ReleaseIdempotency(ctx, acct, "k"); err != nil {
		t.Fatal(err)
	}
	if got := h.claim(acct, "k", "r").GetOutcome(); got != messages.IdempotencyClaim_OUTCOME_CLAIMED {
		t.Errorf("claim after a release: %v, want CLAIMED", got)
	}

	// Never released (its node died): it lapses.
	clock.advance(ledger.ClaimTimeout - time.Millisecond)
	if got := h.claim(acct, "k", "r").GetOutcome(); got != messages.IdempotencyClaim_OUTCOME_IN_PROGRESS {
		t.Errorf("claim just before the first lapses: %v, want IN_PROGRESS", got)
	}
	clock.advance(time.Millisecond)
	if got := h.claim(acct, "k", "r").GetOutcome(); got != messages.IdempotencyClaim_OUTCOME_CLAIMED {
		t.Errorf("claim once the first lapsed: %v, want CLAIMED", got)
	}

	// Refused for want of credits: the claim ends with it, nothing recorded.
	if _, err := h.client.Reserve(ctx, keyedReserve(acct, "big", "k", "r", 11, clock.in(time.Hour))); !errors.Is(err, ledger.ErrInsufficientCredits) {
		t.Fatalf("Reserve(11) of 10: %v, want ErrInsufficientCredits", err)
	}
	if _, err := h.store.Idempotency(acct, "k"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("a refused reservation recorded its key (%v)", err)
	}
	if got := h.claim(acct, "k", "r").GetOutcome(); got != messages.IdempotencyClaim_OUTCOME_CLAIMED {
		t.Errorf("claim after a refused reservation: %v, want CLAIMED", got)
	}

	// Recorded: a release (a late one, say) does not forget the key.
	if _, err := h.client.Reserve(ctx, keyedReserve(acct, "job", "k", "r", 3, clock.in(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := h.client.ReleaseIdempotency(ctx, acct, "k"); err != nil {
		t.Fatal(err)
	}
	if got := h.claim(acct, "k", "r"); got.GetOutcome() != messages.IdempotencyClaim_OUTCOME_REPLAY || got.GetJobId() != "job" {
		t.Errorf("claim after releasing a recorded key: %v, want REPLAY of job", got)
	}
}

// TestIdempotencyConflict: whatever the claims say, a key never makes two
// jobs: a reservation whose key already names another unexpired job is
// refused and moves nothing.
func TestIdempotencyConflict(t *testing.T) {
	h, clock := newClockedHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 100).GetAccount().GetId()
	if _, err := h.client.Reserve(ctx, keyedReserve(acct, "job-1", "k", "r", 5, clock.in(time.Minute))); err != nil {
		t.Fatal(err)
	}
	seq, before := h.ledgerSeq(), h.balance(acct)
	_, err := h.client.Reserve(ctx, keyedReserve(acct, "job-2", "k", "r", 5, clock.in(time.Minute)))
	if !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("a second job with the key: %v, want ErrConflict", err)
	}
	if h.ledgerSeq() != seq {
		t.Errorf("a refused reservation wrote ledger entries")
	}
	if diff := cmp.Diff(before, h.balance(acct), protocmp.Transform()); diff != "" {
		t.Errorf("balance moved (-before +after):\n%s", diff)
	}
	if _, err := h.store.JobEvents("job-2"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("the refused job has events (%v)", err)
	}
	// The first job's own reservation, replayed, is still fine.
	if _, err := h.client.Reserve(ctx, keyedReserve(acct, "job-1", "k", "r", 5, clock.in(time.Minute))); err != nil {
		t.Errorf("replayed reservation of job-1: %v", err)
	}
	// A record that does not match its reservation is a caller's bug.
	bad := keyedReserve(acct, "job-3", "k3", "r", 1, clock.in(time.Minute))
	bad.Idempotency.JobId = "job-4"
	if _, err := h.client.Reserve(ctx, bad); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("record of another job: %v, want ErrInvalid", err)
	}
	clock.advance(time.Minute)
	if _, err := h.client.Reserve(ctx, keyedReserve(acct, "job-2", "k", "r", 5, clock.in(time.Minute))); err != nil {
		t.Errorf("the key once expired: %v", err)
	}
}

// TestIdempotencyConcurrentClaims: many requests with one key at once, one
// claim.
func TestIdempotencyConcurrentClaims(t *testing.T) {
	h, _ := newClockedHarness(t)
	acct := h.createAccount("a", 1).GetAccount().GetId()
	const n = 16
	var wg sync.WaitGroup
	outcomes := make([]messages.IdempotencyClaim_Outcome, n)
	for i := range n {
		wg.Go(func() {
			res, err := h.client.ClaimIdempotency(t.Context(), &messages.ClaimIdempotency{AccountId: acct, Key: "same", RequestSha256: []byte("r")})
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
			}
			outcomes[i] = res.GetOutcome()
		})
	}
	wg.Wait()
	claimed := 0
	for _, o := range outcomes {
		switch o {
		case messages.IdempotencyClaim_OUTCOME_CLAIMED:
			claimed++
		case messages.IdempotencyClaim_OUTCOME_IN_PROGRESS:
		default:
			t.Errorf("outcome %v, want CLAIMED or IN_PROGRESS", o)
		}
	}
	if claimed != 1 {
		t.Errorf("%d of %d concurrent claims were CLAIMED, want 1", claimed, n)
	}
}

// TestIdempotencySweep: expired records are removed by the sweep that runs
// with the claims; unexpired ones stay.
func TestIdempotencySweep(t *testing.T) {
	h, clock := newClockedHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 100).GetAccount().GetId()
	for i, ttl := range []time.Duration{time.Minute, time.Minute, 48 * time.Hour} {
		job := fmt.Sprintf("job-%d", i)
		if _, err := h.client.Reserve(ctx, keyedReserve(acct, job, "k-"+job, "r", 1, clock.in(ttl))); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(24 * time.Hour)
	h.claim(acct, "trigger", "r") // the sweep runs at the first claim, then every 10 minutes
	for i, wantKept := range []bool{false, false, true} {
		_, err := h.store.Idempotency(acct, fmt.Sprintf("k-job-%d", i))
		if kept := err == nil; kept != wantKept {
			t.Errorf("record of job-%d kept = %v (%v), want %v", i, kept, err, wantKept)
		}
	}
}

// TestMaxActiveJobs: the ledger bounds an account's unfinished jobs: by the
// node's default in the reservation, or by the account's own limit; a refused
// reservation moves nothing; a settled (or voided) job frees its place.
func TestMaxActiveJobs(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 1000).GetAccount().GetId()
	reserve := func(job string, def int32) error {
		m := reserveMsg(acct, job, 10)
		m.MaxActiveJobs = def
		_, err := h.client.Reserve(ctx, m)
		return err
	}
	for _, job := range []string{"j1", "j2"} {
		if err := reserve(job, 2); err != nil {
			t.Fatal(err)
		}
	}
	seq, before := h.ledgerSeq(), h.balance(acct)
	if before.GetActiveJobs() != 2 {
		t.Fatalf("active jobs %d, want 2", before.GetActiveJobs())
	}
	err := reserve("j3", 2)
	if !errors.Is(err, ledger.ErrTooManyActiveJobs) {
		t.Fatalf("third job with a limit of 2: %v, want ErrTooManyActiveJobs", err)
	}
	t.Logf("refused: %v", err)
	if h.ledgerSeq() != seq {
		t.Errorf("a refused reservation wrote ledger entries")
	}
	if diff := cmp.Diff(before, h.balance(acct), protocmp.Transform()); diff != "" {
		t.Errorf("balance moved (-before +after):\n%s", diff)
	}
	if _, err := h.store.JobEvents("j3"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("the refused job has events (%v)", err)
	}
	// A replay of a job already reserved is not a new job.
	if err := reserve("j2", 2); err != nil {
		t.Errorf("replayed reservation at the limit: %v", err)
	}
	// No default (0): no limit.
	if err := reserve("j3", 0); err != nil {
		t.Errorf("no limit: %v", err)
	}

	// The account's own limit wins over the default, higher or lower.
	if _, err := h.client.SetLimits(ctx, acct, &messages.AccountLimits{MaxActiveJobs: 4}); err != nil {
		t.Fatal(err)
	}
	if err := reserve("j4", 2); err != nil {
		t.Errorf("4th job with an own limit of 4 over a default of 2: %v", err)
	}
	if err := reserve("j5", 100); !errors.Is(err, ledger.ErrTooManyActiveJobs) {
		t.Errorf("5th job with an own limit of 4: %v, want ErrTooManyActiveJobs", err)
	}

	// Settling one frees a place; so does voiding a reservation that was made.
	if _, err := h.client.Settle(ctx, settleMsg(acct, "j1", 10, 0)); err != nil {
		t.Fatal(err)
	}
	if err := reserve("j5", 0); err != nil {
		t.Errorf("after a settlement: %v", err)
	}
	if _, err := h.client.Settle(ctx, &messages.SettleCredits{AccountId: acct, JobId: "j2", Refund: 10, Void: true}); err != nil {
		t.Fatal(err)
	}
	// Voiding one never made frees nothing.
	if _, err := h.client.Settle(ctx, &messages.SettleCredits{AccountId: acct, JobId: "never", Void: true}); err != nil {
		t.Fatal(err)
	}
	if got := h.balance(acct).GetActiveJobs(); got != 3 {
		t.Errorf("active jobs %d after settling j1 and voiding j2, want 3 (j3, j4, j5)", got)
	}
	h.restart()
	if got := h.balance(acct).GetActiveJobs(); got != 3 {
		t.Errorf("active jobs %d after a restart, want 3", got)
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Errorf("Verify: %v", err)
	}

	// A stored count that does not match the entries is a discrepancy.
	bad := h.balance(acct)
	bad.ActiveJobs = 7
	b := h.store.NewBatch()
	b.PutBalance(bad)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ledger.Verify(h.store); !errors.Is(err, ledger.ErrDiscrepancy) {
		t.Errorf("Verify with a wrong active job count: %v, want ErrDiscrepancy", err)
	}
}

// TestActiveJobsCountedAtLoad: a store written before balances counted their
// active jobs passes Verify (it cannot know yet), and the ledger counts them
// from the entries when it loads, once; from then on Verify checks them.
func TestActiveJobsCountedAtLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := persistence.Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// As an older version left it: two jobs reserved, one settled, one voided
	// before its reservation; no active_jobs, no mark.
	b := s.NewBatch()
	for _, e := range []*messages.LedgerEntry{
		{Seq: 1, AccountId: "a", Kind: messages.LedgerKind_LEDGER_KIND_GRANT, Amount: 100, GrantId: "initial"},
		{Seq: 2, AccountId: "a", JobId: "j1", Kind: messages.LedgerKind_LEDGER_KIND_RESERVE, Amount: 10},
		{Seq: 3, AccountId: "a", JobId: "j2", Kind: messages.LedgerKind_LEDGER_KIND_RESERVE, Amount: 20},
		{Seq: 4, AccountId: "a", JobId: "j1", Kind: messages.LedgerKind_LEDGER_KIND_CHARGE, Amount: 7},
		{Seq: 5, AccountId: "a", JobId: "j1", Kind: messages.LedgerKind_LEDGER_KIND_REFUND, Amount: 3},
		{Seq: 6, AccountId: "a", JobId: "j3", Kind: messages.LedgerKind_LEDGER_KIND_CHARGE, Amount: 0},
		{Seq: 7, AccountId: "a", JobId: "j3", Kind: messages.LedgerKind_LEDGER_KIND_REFUND, Amount: 0},
	} {
		b.PutLedgerEntry(e)
	}
	b.PutAccount(&messages.Account{Id: "a", Number: 1, Name: "old"})
	b.PutBalance(&messages.Balance{AccountId: "a", Granted: 100, Charged: 7, Reserved: 20})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ledger.Verify(s); err != nil {
		t.Fatalf("Verify of an older store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	h := newHarness(t)
	h.stop()
	h.dir = dir
	h.start()
	want := &messages.Balance{AccountId: "a", Granted: 100, Charged: 7, Reserved: 20, ActiveJobs: 1}
	if diff := cmp.Diff(want, h.balance("a"), protocmp.Transform()); diff != "" {
		t.Errorf("balance after the load (-want +got):\n%s", diff)
	}
	stored, err := h.store.Balance("a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stored, protocmp.Transform()); diff != "" {
		t.Errorf("balance as stored after the load (-want +got):\n%s", diff)
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Errorf("Verify after the load: %v", err)
	}
	// Counted now: Verify sees a wrong count.
	b = h.store.NewBatch()
	b.PutBalance(&messages.Balance{AccountId: "a", Granted: 100, Charged: 7, Reserved: 20})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ledger.Verify(h.store); !errors.Is(err, ledger.ErrDiscrepancy) {
		t.Errorf("Verify with active_jobs 0 and one open reservation: %v, want ErrDiscrepancy", err)
	}
}

// TestSetLimits: limits are kept on the account, durably, without moving the
// account counter; bad limits and unknown accounts are refused.
func TestSetLimits(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	first := h.createAccount("a", 1).GetAccount()
	h.createAccount("b", 1)
	limits := &messages.AccountLimits{RequestsPerSecond: 2.5, Burst: 5, MaxActiveJobs: 3}
	got, err := h.client.SetLimits(ctx, first.GetId(), limits)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(limits, got.GetLimits(), protocmp.Transform()); diff != "" {
		t.Errorf("SetLimits answered (-want +got):\n%s", diff)
	}
	h.restart()
	acct, err := h.client.Account(ctx, first.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(limits, acct.GetLimits(), protocmp.Transform()); diff != "" {
		t.Errorf("limits after a restart (-want +got):\n%s", diff)
	}
	if acct.GetNumber() != first.GetNumber() || acct.GetName() != "a" {
		t.Errorf("account after SetLimits: %v", acct)
	}
	if n := h.createAccount("c", 1).GetAccount().GetNumber(); n != 3 {
		t.Errorf("next account number %d after SetLimits on account 1, want 3", n)
	}
	// Cleared: the defaults again.
	if got, err := h.client.SetLimits(ctx, first.GetId(), nil); err != nil || got.GetLimits() != nil {
		t.Errorf("SetLimits(nil) = %v, %v; want no limits", got, err)
	}
	for _, bad := range []*messages.AccountLimits{{RequestsPerSecond: -1}, {Burst: -1}, {MaxActiveJobs: -2}} {
		if _, err := h.client.SetLimits(ctx, first.GetId(), bad); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("SetLimits(%v): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := h.client.SetLimits(ctx, "acct_none", limits); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Errorf("SetLimits(unknown account): %v, want ErrUnknownAccount", err)
	}
}
