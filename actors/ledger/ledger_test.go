package ledger_test

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

var ledgerSeed = flag.Uint64("ledger.seed", 20250101, "seed of TestRandomizedLedger")

// harness is a real LedgerActor in a real actor system over a real store.
type harness struct {
	tb     testing.TB
	dir    string
	log    *slog.Logger
	system *actor.ActorSystem
	store  *persistence.Store
	pid    *actor.PID
	client *ledger.Client
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	h := &harness{
		tb:  tb,
		dir: tb.TempDir(),
		log: log,
		system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return log
		})),
	}
	h.start()
	tb.Cleanup(func() {
		h.stop()
		h.system.Shutdown()
	})
	return h
}

func (h *harness) start() {
	h.tb.Helper()
	s, err := persistence.Open(h.dir, h.log)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.store = s
	clock := time.UnixMilli(1_700_000_000_000)
	h.pid = h.system.Root.Spawn(ledger.Props(s, h.log, func() time.Time { return clock }))
	h.client = ledger.NewClient(h.system.Root, h.pid, 10*time.Second)
}

func (h *harness) stop() {
	h.tb.Helper()
	if h.store == nil {
		return
	}
	if err := h.system.Root.StopFuture(h.pid).Wait(); err != nil {
		h.tb.Fatalf("stop ledger actor: %v", err)
	}
	if err := h.store.Close(); err != nil {
		h.tb.Fatalf("close store: %v", err)
	}
	h.store = nil
}

// restart stops the actor, closes the store, reopens it and spawns a new
// actor: only what was durable survives.
func (h *harness) restart() {
	h.tb.Helper()
	h.stop()
	h.start()
}

func (h *harness) createAccount(name string, credits int64) *messages.AccountCreated {
	h.tb.Helper()
	res, err := h.client.CreateAccount(h.tb.Context(), &messages.CreateAccount{Name: name, Credits: credits})
	if err != nil {
		h.tb.Fatalf("CreateAccount(%s, %d): %v", name, credits, err)
	}
	return res
}

func (h *harness) balance(account string) *messages.Balance {
	h.tb.Helper()
	res, err := h.client.Balance(h.tb.Context(), account, 0)
	if err != nil {
		h.tb.Fatalf("Balance(%s): %v", account, err)
	}
	return res.GetBalance()
}

func (h *harness) ledgerSeq() int64 {
	h.tb.Helper()
	n, err := h.store.LedgerSeq()
	if err != nil {
		h.tb.Fatal(err)
	}
	return n
}

func createdEvent(job, account string, pages int64) *messages.JobEvent {
	return &messages.JobEvent{JobId: job, Seq: 1, Event: &messages.JobEvent_Created{Created: &messages.JobCreated{
		JobId: job, AccountId: account, Pages: int32(pages), CreditsPerPage: 1, CreditsReserved: pages,
	}}}
}

func finishedEvent(job string, charge, refund int64) *messages.JobEvent {
	return &messages.JobEvent{JobId: job, Seq: 2, Event: &messages.JobEvent_Finished{Finished: &messages.JobFinished{
		Status: messages.JobStatus_JOB_STATUS_COMPLETED, CreditsCharged: charge, CreditsRefunded: refund,
	}}}
}

func reserveMsg(account, job string, amount int64) *messages.ReserveCredits {
	return &messages.ReserveCredits{
		AccountId: account, JobId: job, Amount: amount,
		JobEvents:   []*messages.JobEvent{createdEvent(job, account, amount)},
		Idempotency: &messages.IdempotencyRecord{AccountId: account, Key: "idem-" + job, JobId: job},
	}
}

func settleMsg(account, job string, charge, refund int64) *messages.SettleCredits {
	return &messages.SettleCredits{AccountId: account, JobId: job, Charge: charge, Refund: refund, Finished: finishedEvent(job, charge, refund)}
}

// model is what the ledger should hold, computed independently.
type model struct {
	accounts []string
	bals     map[string]*messages.Balance
	grants   map[string]*messages.LedgerEntry // account/grant id -> the grant as first made
	jobs     map[string]*jobModel
	jobIDs   []string
}

type jobModel struct {
	account        string
	reserved       int64
	charge, refund int64
	settled        bool
}

func (m *model) available(account string) int64 {
	b := m.bals[account]
	return b.GetGranted() - b.GetCharged() - b.GetReserved()
}

// checkAccounts compares every account as the store holds it with the
// model and checks the invariants; the accounts in ask are also compared as
// the actor answers (its memory may not drift from the store).
func (h *harness) checkAccounts(m *model, step int, ask ...string) {
	h.tb.Helper()
	stored, err := h.store.Balances()
	if err != nil {
		h.tb.Fatal(err)
	}
	if len(stored) != len(m.accounts) {
		h.tb.Fatalf("step %d: %d balances stored, %d accounts", step, len(stored), len(m.accounts))
	}
	for _, id := range m.accounts {
		want, got := m.bals[id], stored[id]
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			h.tb.Fatalf("step %d: account %s as stored (-want +got):\n%s", step, id, diff)
		}
		balance := got.GetGranted() - got.GetCharged()
		if avail := ledger.Available(got); avail != balance-got.GetReserved() || avail < 0 || got.GetReserved() < 0 {
			h.tb.Fatalf("step %d: account %s: balance %d, reserved %d, available %d: broken invariant",
				step, id, balance, got.GetReserved(), avail)
		}
	}
	for _, id := range ask {
		if diff := cmp.Diff(m.bals[id], h.balance(id), protocmp.Transform()); diff != "" {
			h.tb.Fatalf("step %d: account %s as the ledger answers (-want +got):\n%s", step, id, diff)
		}
	}
}

// checkJob checks a job's movements as stored: a settled job's reservation
// equals its charge plus its refund, each recorded once.
func (h *harness) checkJob(m *model, id string, step int) {
	h.tb.Helper()
	j := m.jobs[id]
	res, err := h.store.JobLedgerEntry(id, messages.LedgerKind_LEDGER_KIND_RESERVE)
	if err != nil || res.GetAmount() != j.reserved || res.GetAccountId() != j.account {
		h.tb.Fatalf("step %d: job %s reservation = %v, %v; want %d from %s", step, id, res, err, j.reserved, j.account)
	}
	charge, cerr := h.store.JobLedgerEntry(id, messages.LedgerKind_LEDGER_KIND_CHARGE)
	refund, rerr := h.store.JobLedgerEntry(id, messages.LedgerKind_LEDGER_KIND_REFUND)
	if !j.settled {
		if !errors.Is(cerr, persistence.ErrNotFound) || !errors.Is(rerr, persistence.ErrNotFound) {
			h.tb.Fatalf("step %d: unsettled job %s has charge %v / refund %v", step, id, charge, refund)
		}
		return
	}
	if cerr != nil || rerr != nil {
		h.tb.Fatalf("step %d: settled job %s: charge %v, refund %v", step, id, cerr, rerr)
	}
	if charge.GetAmount() != j.charge || refund.GetAmount() != j.refund {
		h.tb.Fatalf("step %d: job %s charged %d refunded %d, want %d and %d", step, id, charge.GetAmount(), refund.GetAmount(), j.charge, j.refund)
	}
	if res.GetAmount() != charge.GetAmount()+refund.GetAmount() {
		h.tb.Fatalf("step %d: job %s: reserved %d != charged %d + refunded %d", step, id, res.GetAmount(), charge.GetAmount(), refund.GetAmount())
	}
}

// TestRandomizedLedger runs a seeded random mix of account creations, grants,
// reservations and settlements (with replays of each, refused requests and
// restarts of the actor and the store) against a model, and checks the
// ledger's invariants after every step.
func TestRandomizedLedger(t *testing.T) {
	const steps = 2000
	seed := *ledgerSeed
	t.Logf("seed %d (steps %d); run another with -ledger.seed=N", seed, steps)
	rng := rand.New(rand.NewPCG(seed, 42))
	h := newHarness(t)
	ctx := t.Context()
	m := &model{bals: map[string]*messages.Balance{}, grants: map[string]*messages.LedgerEntry{}, jobs: map[string]*jobModel{}}
	restarts, refused, replays := 0, 0, 0

	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	unsettled := func() []string {
		var out []string
		for _, id := range m.jobIDs {
			if !m.jobs[id].settled {
				out = append(out, id)
			}
		}
		return out
	}

	for step := range steps {
		seqBefore := h.ledgerSeq()
		var touched []string // jobs this step touched
		var accts []string   // accounts this step touched
		replay := false      // a step that must move nothing
		op := rng.IntN(100)
		switch {
		case len(m.accounts) == 0 || (op < 3 && len(m.accounts) < 5):
			credits := int64(rng.IntN(3)) * int64(rng.IntN(100))
			res := h.createAccount(fmt.Sprintf("acct-%d", len(m.accounts)), credits)
			id := res.GetAccount().GetId()
			if res.GetAccount().GetNumber() != int64(len(m.accounts)+1) {
				t.Fatalf("step %d: account number %d, want %d", step, res.GetAccount().GetNumber(), len(m.accounts)+1)
			}
			m.accounts = append(m.accounts, id)
			m.bals[id] = &messages.Balance{AccountId: id, Granted: credits}
			accts = append(accts, id)
			if credits > 0 {
				e, err := h.store.GrantLedgerEntry(id, "initial")
				if err != nil {
					t.Fatalf("step %d: initial grant: %v", step, err)
				}
				m.grants[id+"/initial"] = e
			}

		case op < 15: // a grant, new or a replay of an earlier one
			acct := pick(m.accounts)
			accts = append(accts, acct)
			gid := fmt.Sprintf("g%d", rng.IntN(40)) // small space: replays are common
			amount := int64(1 + rng.IntN(60))
			res, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: acct, Amount: amount, Reason: "top-up", GrantId: gid})
			if err != nil {
				t.Fatalf("step %d: Grant: %v", step, err)
			}
			if first, ok := m.grants[acct+"/"+gid]; ok {
				replay = true
				if diff := cmp.Diff(first, res.GetEntry(), protocmp.Transform()); diff != "" {
					t.Fatalf("step %d: replayed grant %s answered another entry (-first +got):\n%s", step, gid, diff)
				}
			} else {
				m.grants[acct+"/"+gid] = res.GetEntry()
				m.bals[acct].Granted += amount
				if res.GetEntry().GetAmount() != amount || res.GetEntry().GetKind() != messages.LedgerKind_LEDGER_KIND_GRANT {
					t.Fatalf("step %d: grant entry %v", step, res.GetEntry())
				}
			}

		case op < 45: // a new reservation, within or beyond what is available
			acct := pick(m.accounts)
			accts = append(accts, acct)
			avail := m.available(acct)
			amount := int64(rng.IntN(int(avail) + 30))
			if rng.IntN(4) == 0 {
				amount = avail // exactly all of it
			}
			job := fmt.Sprintf("job-%04d", step)
			res, err := h.client.Reserve(ctx, reserveMsg(acct, job, amount))
			if amount > avail {
				if !errors.Is(err, ledger.ErrInsufficientCredits) {
					t.Fatalf("step %d: Reserve(%d) with %d available: %v, want ErrInsufficientCredits", step, amount, avail, err)
				}
				if _, err := h.store.JobEvents(job); !errors.Is(err, persistence.ErrNotFound) {
					t.Fatalf("step %d: a refused reservation wrote job events (%v)", step, err)
				}
				if _, err := h.store.Idempotency(acct, "idem-"+job); !errors.Is(err, persistence.ErrNotFound) {
					t.Fatalf("step %d: a refused reservation wrote its idempotency key (%v)", step, err)
				}
				replay = true // nothing may move
				refused++
				break
			}
			if err != nil {
				t.Fatalf("step %d: Reserve(%d) with %d available: %v", step, amount, avail, err)
			}
			if res.GetEntry().GetAmount() != amount || res.GetBalance().GetReserved() != m.bals[acct].GetReserved()+amount {
				t.Fatalf("step %d: Reserve answered %v", step, res)
			}
			m.bals[acct].Reserved += amount
			m.bals[acct].ActiveJobs++
			m.jobs[job] = &jobModel{account: acct, reserved: amount}
			m.jobIDs = append(m.jobIDs, job)
			touched = append(touched, job)
			if evs, err := h.store.JobEvents(job); err != nil || len(evs) != 1 || evs[0].GetCreated() == nil {
				t.Fatalf("step %d: the reservation's JobCreated: %v, %v", step, evs, err)
			}

		case op < 55: // a replayed reservation (maybe with another amount): nothing moves
			if len(m.jobIDs) == 0 {
				continue
			}
			job := pick(m.jobIDs)
			j := m.jobs[job]
			amount := j.reserved
			if rng.IntN(2) == 0 {
				amount += int64(rng.IntN(10))
			}
			res, err := h.client.Reserve(ctx, reserveMsg(j.account, job, amount))
			if err != nil {
				t.Fatalf("step %d: replayed Reserve of %s: %v", step, job, err)
			}
			if res.GetEntry().GetAmount() != j.reserved {
				t.Fatalf("step %d: replayed Reserve answered amount %d, first was %d", step, res.GetEntry().GetAmount(), j.reserved)
			}
			replay = true
			replays++
			touched = append(touched, job)

		case op < 80: // a settlement
			open := unsettled()
			if len(open) == 0 {
				continue
			}
			job := pick(open)
			j := m.jobs[job]
			charge := int64(rng.IntN(int(j.reserved) + 1))
			res, err := h.client.Settle(ctx, settleMsg(j.account, job, charge, j.reserved-charge))
			if err != nil {
				t.Fatalf("step %d: Settle(%s, %d+%d): %v", step, job, charge, j.reserved-charge, err)
			}
			if res.GetAlready() {
				t.Fatalf("step %d: first Settle of %s says already settled", step, job)
			}
			j.settled, j.charge, j.refund = true, charge, j.reserved-charge
			m.bals[j.account].Reserved -= j.reserved
			m.bals[j.account].ActiveJobs--
			m.bals[j.account].Charged += charge
			touched = append(touched, job)
			accts = append(accts, j.account)
			if evs, err := h.store.JobEvents(job); err != nil || len(evs) != 2 || evs[1].GetFinished() == nil {
				t.Fatalf("step %d: the settlement's JobFinished: %v, %v", step, evs, err)
			}

		case op < 90: // a replayed settlement, with the same or other numbers
			var done []string
			for _, id := range m.jobIDs {
				if m.jobs[id].settled {
					done = append(done, id)
				}
			}
			if len(done) == 0 {
				continue
			}
			job := pick(done)
			j := m.jobs[job]
			charge := j.charge
			if rng.IntN(2) == 0 {
				charge = int64(rng.IntN(int(j.reserved) + 1))
			}
			res, err := h.client.Settle(ctx, settleMsg(j.account, job, charge, j.reserved-charge))
			if err != nil || !res.GetAlready() {
				t.Fatalf("step %d: replayed Settle of %s = %v, %v; want already", step, job, res, err)
			}
			replay = true
			replays++
			touched = append(touched, job)

		case op < 97: // a settlement that does not add up, or is not the job's account's
			open := unsettled()
			if len(open) == 0 {
				continue
			}
			job := pick(open)
			j := m.jobs[job]
			var msg *messages.SettleCredits
			switch rng.IntN(4) {
			case 0:
				msg = settleMsg(j.account, job, j.reserved, 1)
			case 1:
				if j.reserved == 0 {
					continue
				}
				msg = settleMsg(j.account, job, j.reserved-1, 0)
			case 2:
				msg = settleMsg(j.account, job, -1, j.reserved+1)
			default:
				other := pick(m.accounts)
				if other == j.account {
					continue
				}
				msg = settleMsg(other, job, j.reserved, 0)
			}
			if _, err := h.client.Settle(ctx, msg); !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("step %d: Settle(%s, charge %d, refund %d, account %s) of reserved %d: %v, want ErrInvalid",
					step, job, msg.GetCharge(), msg.GetRefund(), msg.GetAccountId(), j.reserved, err)
			}
			if evs, err := h.store.JobEvents(job); err != nil || len(evs) != 1 {
				t.Fatalf("step %d: a refused settlement wrote job events: %v, %v", step, evs, err)
			}
			replay = true
			refused++
			touched = append(touched, job)

		default: // restart the actor and the store
			h.restart()
			restarts++
			accts = m.accounts // what the new actor loaded
		}

		if replay {
			if seq := h.ledgerSeq(); seq != seqBefore {
				t.Fatalf("step %d: a replayed or refused request wrote ledger entries %d..%d", step, seqBefore+1, seq)
			}
		}
		for _, job := range touched {
			accts = append(accts, m.jobs[job].account)
		}
		if step%100 == 99 {
			accts = m.accounts
		}
		h.checkAccounts(m, step, accts...)
		for _, job := range touched {
			h.checkJob(m, job, step)
		}
		if step%500 == 499 {
			for _, job := range m.jobIDs {
				h.checkJob(m, job, step)
			}
			if err := ledger.Verify(h.store); err != nil {
				t.Fatalf("step %d: Verify: %v", step, err)
			}
		}
	}

	// Every job created and not settled is exactly what the recovery scan lists.
	active, err := h.store.ActiveJobs()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(unsettled(), active); diff != "" {
		t.Errorf("ActiveJobs (-unsettled in the model +stored):\n%s", diff)
	}
	h.restart()
	h.checkAccounts(m, steps, m.accounts...)
	for _, job := range m.jobIDs {
		h.checkJob(m, job, steps)
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Fatalf("Verify at the end: %v", err)
	}
	t.Logf("%d jobs, %d restarts, %d refused, %d replays", len(m.jobIDs), restarts, refused, replays)
	if restarts == 0 || refused == 0 || replays == 0 {
		t.Errorf("the random mix missed a kind of step: %d restarts, %d refused, %d replays", restarts, refused, replays)
	}
}

func TestReserveBeyondAvailable(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 10).GetAccount().GetId()
	if _, err := h.client.Reserve(ctx, reserveMsg(acct, "job-1", 7)); err != nil {
		t.Fatal(err)
	}
	seq := h.ledgerSeq()
	before := h.balance(acct)
	_, err := h.client.Reserve(ctx, reserveMsg(acct, "job-2", 4)) // 3 available
	if !errors.Is(err, ledger.ErrInsufficientCredits) {
		t.Fatalf("Reserve(4) with 3 available: %v, want ErrInsufficientCredits", err)
	}
	if _, err := h.store.JobEvents("job-2"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("refused job has events (%v)", err)
	}
	if _, err := h.store.JobLedgerEntry("job-2", messages.LedgerKind_LEDGER_KIND_RESERVE); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("refused job has a reservation (%v)", err)
	}
	if _, err := h.store.Idempotency(acct, "idem-job-2"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("refused job has an idempotency record (%v)", err)
	}
	if active, _ := h.store.ActiveJobs(); !slices.Equal(active, []string{"job-1"}) {
		t.Errorf("ActiveJobs = %v, want [job-1]", active)
	}
	if got := h.ledgerSeq(); got != seq {
		t.Errorf("ledger seq moved from %d to %d", seq, got)
	}
	if diff := cmp.Diff(before, h.balance(acct), protocmp.Transform()); diff != "" {
		t.Errorf("balance moved (-before +after):\n%s", diff)
	}
	// Exactly what is available is fine.
	if _, err := h.client.Reserve(ctx, reserveMsg(acct, "job-3", 3)); err != nil {
		t.Errorf("Reserve(3) with 3 available: %v", err)
	}
	if avail := ledger.Available(h.balance(acct)); avail != 0 {
		t.Errorf("available = %d, want 0", avail)
	}
}

func TestSettleMustMatchReservation(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 100).GetAccount().GetId()
	other := h.createAccount("b", 100).GetAccount().GetId()
	if _, err := h.client.Reserve(ctx, reserveMsg(acct, "job", 10)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  *messages.SettleCredits
	}{
		{"more than reserved", settleMsg(acct, "job", 10, 1)},
		{"less than reserved", settleMsg(acct, "job", 4, 5)},
		{"negative charge", settleMsg(acct, "job", -1, 11)},
		{"negative refund", settleMsg(acct, "job", 11, -1)},
		{"another account", settleMsg(other, "job", 10, 0)},
		{"no reservation", settleMsg(acct, "no-such-job", 0, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := h.ledgerSeq()
			if _, err := h.client.Settle(ctx, tc.msg); !errors.Is(err, ledger.ErrInvalid) {
				t.Errorf("Settle: %v, want ErrInvalid", err)
			}
			if got := h.ledgerSeq(); got != seq {
				t.Errorf("a refused settlement wrote ledger entries %d..%d", seq+1, got)
			}
		})
	}
	want := &messages.Balance{AccountId: acct, Granted: 100, Reserved: 10, ActiveJobs: 1}
	if diff := cmp.Diff(want, h.balance(acct), protocmp.Transform()); diff != "" {
		t.Errorf("balance after refused settlements (-want +got):\n%s", diff)
	}
	if evs, _ := h.store.JobEvents("job"); len(evs) != 1 {
		t.Errorf("job has %d events after refused settlements, want 1", len(evs))
	}
	// The right one goes through, once.
	res, err := h.client.Settle(ctx, settleMsg(acct, "job", 6, 4))
	if err != nil || res.GetAlready() {
		t.Fatalf("Settle(6+4) = %v, %v", res, err)
	}
	want = &messages.Balance{AccountId: acct, Granted: 100, Charged: 6}
	if diff := cmp.Diff(want, res.GetBalance(), protocmp.Transform()); diff != "" {
		t.Errorf("balance after settlement (-want +got):\n%s", diff)
	}
	seq := h.ledgerSeq()
	res, err = h.client.Settle(ctx, settleMsg(acct, "job", 10, 0))
	if err != nil || !res.GetAlready() || h.ledgerSeq() != seq {
		t.Errorf("second Settle = %v, %v (seq %d → %d); want already and nothing written", res, err, seq, h.ledgerSeq())
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestGrantIdempotentByID(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 5).GetAccount().GetId()
	first, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: acct, Amount: 20, Reason: "invoice 1", GrantId: "inv-1"})
	if err != nil {
		t.Fatal(err)
	}
	h.restart() // the grant id is durable, not just remembered
	again, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: acct, Amount: 999, Reason: "retry", GrantId: "inv-1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first.GetEntry(), again.GetEntry(), protocmp.Transform()); diff != "" {
		t.Errorf("replayed grant entry (-first +again):\n%s", diff)
	}
	if got := h.balance(acct).GetGranted(); got != 25 {
		t.Errorf("granted = %d after a replayed grant, want 25", got)
	}
	// Grants without an id are never deduplicated; another id is another grant.
	for _, gid := range []string{"", "", "inv-2"} {
		if _, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: acct, Amount: 1, GrantId: gid}); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.balance(acct).GetGranted(); got != 28 {
		t.Errorf("granted = %d, want 28", got)
	}
	// The same grant id on another account is that account's own grant.
	other := h.createAccount("b", 0).GetAccount().GetId()
	if _, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: other, Amount: 3, GrantId: "inv-1"}); err != nil {
		t.Fatal(err)
	}
	if got := h.balance(other).GetGranted(); got != 3 {
		t.Errorf("other account granted = %d, want 3", got)
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestRefusedRequests(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 5).GetAccount().GetId()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"grant to an unknown account", func() error {
			_, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: "acct_nope", Amount: 1})
			return err
		}, ledger.ErrUnknownAccount},
		{"zero grant", func() error {
			_, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: acct, Amount: 0})
			return err
		}, ledger.ErrInvalid},
		{"negative grant", func() error {
			_, err := h.client.Grant(ctx, &messages.GrantCredits{AccountId: acct, Amount: -5})
			return err
		}, ledger.ErrInvalid},
		{"reserve on an unknown account", func() error {
			_, err := h.client.Reserve(ctx, reserveMsg("acct_nope", "j1", 1))
			return err
		}, ledger.ErrUnknownAccount},
		{"negative reservation", func() error {
			_, err := h.client.Reserve(ctx, &messages.ReserveCredits{AccountId: acct, JobId: "j2", Amount: -1})
			return err
		}, ledger.ErrInvalid},
		{"reservation without a job", func() error {
			_, err := h.client.Reserve(ctx, &messages.ReserveCredits{AccountId: acct, Amount: 1})
			return err
		}, ledger.ErrInvalid},
		{"account with negative credits", func() error {
			_, err := h.client.CreateAccount(ctx, &messages.CreateAccount{Name: "neg", Credits: -1})
			return err
		}, ledger.ErrInvalid},
		{"balance of an unknown account", func() error {
			_, err := h.client.Balance(ctx, "acct_nope", 0)
			return err
		}, ledger.ErrUnknownAccount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := h.ledgerSeq()
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
			if got := h.ledgerSeq(); got != seq {
				t.Errorf("a refused request wrote ledger entries %d..%d", seq+1, got)
			}
		})
	}
	if accts, _ := h.store.Accounts(); len(accts) != 1 {
		t.Errorf("%d accounts stored, want 1", len(accts))
	}
	if diff := cmp.Diff(&messages.Balance{AccountId: acct, Granted: 5}, h.balance(acct), protocmp.Transform()); diff != "" {
		t.Errorf("balance (-want +got):\n%s", diff)
	}
}

func TestBalanceRecentEntries(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 10).GetAccount().GetId()
	if _, err := h.client.Reserve(ctx, reserveMsg(acct, "job", 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Settle(ctx, settleMsg(acct, "job", 3, 1)); err != nil {
		t.Fatal(err)
	}
	res, err := h.client.Balance(ctx, acct, 3)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []messages.LedgerKind
	var amounts []int64
	for _, e := range res.GetRecent() {
		kinds = append(kinds, e.GetKind())
		amounts = append(amounts, e.GetAmount())
	}
	wantKinds := []messages.LedgerKind{messages.LedgerKind_LEDGER_KIND_REFUND, messages.LedgerKind_LEDGER_KIND_CHARGE, messages.LedgerKind_LEDGER_KIND_RESERVE}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("recent kinds, newest first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 3, 4}, amounts); diff != "" {
		t.Errorf("recent amounts (-want +got):\n%s", diff)
	}
}

func TestVerifyDetectsTamperedBalance(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 50).GetAccount().GetId()
	if _, err := h.client.Reserve(ctx, reserveMsg(acct, "job", 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Settle(ctx, settleMsg(acct, "job", 15, 5)); err != nil {
		t.Fatal(err)
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Fatalf("Verify of an honest ledger: %v", err)
	}
	good := h.balance(acct)
	tampered := []*messages.Balance{
		{AccountId: acct, Granted: good.GetGranted() + 100, Charged: good.GetCharged()},
		{AccountId: acct, Granted: good.GetGranted(), Charged: good.GetCharged() - 1},
		{AccountId: acct, Granted: good.GetGranted(), Charged: good.GetCharged(), Reserved: 1},
	}
	for i, bad := range tampered {
		b := h.store.NewBatch()
		b.PutBalance(bad)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := ledger.Verify(h.store); !errors.Is(err, ledger.ErrDiscrepancy) {
			t.Errorf("tampering %d (%v): Verify = %v, want ErrDiscrepancy", i, bad, err)
		}
	}
	b := h.store.NewBatch()
	b.PutBalance(good)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ledger.Verify(h.store); err != nil {
		t.Errorf("Verify after restoring the balance: %v", err)
	}
}

func TestVerifyDetectsUnbalancedSettlement(t *testing.T) {
	h := newHarness(t)
	// Entries and a balance that agree in total, but one job's charge and
	// refund do not add up to its reservation.
	b := h.store.NewBatch()
	for _, e := range []*messages.LedgerEntry{
		{Seq: 1, AccountId: "a", Kind: messages.LedgerKind_LEDGER_KIND_GRANT, Amount: 100, GrantId: "initial"},
		{Seq: 2, AccountId: "a", JobId: "j", Kind: messages.LedgerKind_LEDGER_KIND_RESERVE, Amount: 10},
		{Seq: 3, AccountId: "a", JobId: "j", Kind: messages.LedgerKind_LEDGER_KIND_CHARGE, Amount: 8},
		{Seq: 4, AccountId: "a", JobId: "j", Kind: messages.LedgerKind_LEDGER_KIND_REFUND, Amount: 4},
	} {
		b.PutLedgerEntry(e)
	}
	b.PutBalance(&messages.Balance{AccountId: "a", Granted: 100, Charged: 8, Reserved: -2})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	err := ledger.Verify(h.store)
	if !errors.Is(err, ledger.ErrDiscrepancy) {
		t.Fatalf("Verify = %v, want ErrDiscrepancy", err)
	}
}

// TestVoid: a node whose remote reservation went unanswered voids it. A
// reservation that was made is refunded in full; one that never arrived is
// marked, so that when it arrives late it is refused; voiding twice moves
// nothing; and the ledger still verifies.
func TestVoid(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 10).GetAccount().GetId()
	void := func(job string, amount int64) (*messages.CreditsSettled, error) {
		return h.client.Settle(ctx, &messages.SettleCredits{AccountId: acct, JobId: job, Refund: amount, Void: true})
	}
	remote := func(job string, amount int64) *messages.ReserveCredits {
		return &messages.ReserveCredits{AccountId: acct, JobId: job, Amount: amount, OwnerNode: "n2"}
	}

	// Made, then voided: all of it back.
	if _, err := h.client.Reserve(ctx, remote("made", 4)); err != nil {
		t.Fatal(err)
	}
	if got := h.balance(acct); got.GetReserved() != 4 {
		t.Fatalf("reserved %d after the reservation, want 4", got.GetReserved())
	}
	if _, err := void("made", 4); err != nil {
		t.Fatalf("void a made reservation: %v", err)
	}
	if got := h.balance(acct); got.GetReserved() != 0 || got.GetCharged() != 0 || ledger.Available(got) != 10 {
		t.Errorf("after the void: %v, want nothing reserved or charged, 10 available", got)
	}

	// Voided before it arrived: refused when it does, nothing moves.
	seq := h.ledgerSeq()
	if _, err := void("late", 3); err != nil {
		t.Fatalf("void a reservation never made: %v", err)
	}
	if got := h.ledgerSeq(); got != seq+2 {
		t.Errorf("voiding an absent reservation wrote %d entries, want 2 (zero charge, zero refund)", got-seq)
	}
	if _, err := h.client.Reserve(ctx, remote("late", 3)); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("a reservation arriving after its void: %v, want ErrInvalid", err)
	}
	if got := h.balance(acct); got.GetReserved() != 0 || ledger.Available(got) != 10 {
		t.Errorf("after the late reservation: %v, want 10 available", got)
	}

	// Again: nothing moves.
	seq = h.ledgerSeq()
	for _, job := range []string{"made", "late"} {
		if res, err := void(job, 0); err != nil || !res.GetAlready() {
			t.Errorf("second void of %s: %v, %v; want already settled", job, res, err)
		}
	}
	if got := h.ledgerSeq(); got != seq {
		t.Errorf("second voids wrote %d entries", got-seq)
	}
	h.restart()
	if err := ledger.Verify(h.store); err != nil {
		t.Errorf("Verify after voids: %v", err)
	}
	if got := h.balance(acct); ledger.Available(got) != 10 {
		t.Errorf("after a restart: %v, want 10 available", got)
	}
}

// TestAuthenticate: the ledger finds an account by its key's hash; unknown
// hashes are ErrUnauthorized.
func TestAuthenticate(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	sum := []byte("0123456789abcdef0123456789abcdef")
	created, err := h.client.CreateAccount(ctx, &messages.CreateAccount{Name: "k", Credits: 1, KeySha256: sum, KeyId: "key_1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.client.Authenticate(ctx, sum)
	if err != nil || got.GetId() != created.GetAccount().GetId() {
		t.Errorf("Authenticate(known hash) = %v, %v", got, err)
	}
	if _, err := h.client.Authenticate(ctx, []byte("other")); !errors.Is(err, ledger.ErrUnauthorized) {
		t.Errorf("Authenticate(unknown hash): %v, want ErrUnauthorized", err)
	}
	if a, err := h.client.Account(ctx, created.GetAccount().GetId()); err != nil || a.GetName() != "k" {
		t.Errorf("Account = %v, %v", a, err)
	}
	if _, err := h.client.Account(ctx, "acct_none"); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Errorf("Account(unknown): %v, want ErrUnknownAccount", err)
	}
}
