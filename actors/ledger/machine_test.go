package ledger_test

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// newMachine is a loaded ledger machine on a real store in a temporary dir.
func newMachine(tb testing.TB) (*ledger.Machine, *persistence.Store) {
	tb.Helper()
	s, err := persistence.Open(tb.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	m := ledger.NewMachine(s, slog.New(slog.DiscardHandler))
	if err := m.Load(); err != nil {
		tb.Fatal(err)
	}
	return m, s
}

// randomCommands is a log of n ledger commands as a leader would propose
// them: accounts, grants (each with its id), keys, reservations of jobs and
// their settlements, some of them refused (too few credits, unknown
// account).
func randomCommands(rng *rand.Rand, n int) []*messages.LedgerCommand {
	var (
		cmds     []*messages.LedgerCommand
		accounts []string
		open     []*messages.ReserveCredits
		at       int64 = 1_700_000_000_000
	)
	add := func(c *messages.LedgerCommand) {
		at += rng.Int64N(1000)
		c.AtUnixMs = at
		cmds = append(cmds, c)
	}
	for len(cmds) < n {
		switch k := rng.IntN(10); {
		case len(accounts) == 0 || k == 0:
			id := fmt.Sprintf("acct_%d", len(accounts))
			accounts = append(accounts, id)
			add(&messages.LedgerCommand{Command: &messages.LedgerCommand_CreateAccount{CreateAccount: &messages.CreateAccount{
				AccountId: id, Name: id, Credits: rng.Int64N(50),
				KeyId: "k_" + id, KeySha256: sum(id),
			}}})
		case k == 1:
			add(&messages.LedgerCommand{Command: &messages.LedgerCommand_GrantCredits{GrantCredits: &messages.GrantCredits{
				AccountId: accounts[rng.IntN(len(accounts))], Amount: 1 + rng.Int64N(30), Reason: "top-up",
				GrantId: fmt.Sprintf("g%d", len(cmds)),
			}}})
		case k == 2:
			acct := accounts[rng.IntN(len(accounts))]
			add(&messages.LedgerCommand{Command: &messages.LedgerCommand_CreateKey{CreateKey: &messages.CreateKey{
				AccountId: acct, KeyId: fmt.Sprintf("k%d", len(cmds)), KeySha256: sum(fmt.Sprint(len(cmds))),
			}}})
		case k <= 6:
			acct := accounts[rng.IntN(len(accounts))]
			if rng.IntN(20) == 0 {
				acct = "acct_unknown"
			}
			job := fmt.Sprintf("job%d", len(cmds))
			r := &messages.ReserveCredits{AccountId: acct, JobId: job, Amount: 1 + rng.Int64N(20),
				JobEvents: []*messages.JobEvent{createdEvent(job, acct, 1)}}
			open = append(open, r)
			add(&messages.LedgerCommand{Command: &messages.LedgerCommand_ReserveCredits{ReserveCredits: r}})
		case len(open) > 0:
			i := rng.IntN(len(open))
			r := open[i]
			open = append(open[:i], open[i+1:]...)
			charge := rng.Int64N(r.GetAmount() + 1)
			add(&messages.LedgerCommand{Command: &messages.LedgerCommand_SettleCredits{SettleCredits: settleMsg(
				r.GetAccountId(), r.GetJobId(), charge, r.GetAmount()-charge)}})
		}
	}
	return cmds
}

// ledgerState is everything the machine keeps that its invariants are
// about: every account's balance and entries, and the keys.
func ledgerState(tb testing.TB, s *persistence.Store) map[string]any {
	tb.Helper()
	bals, err := s.Balances()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]any{}
	for id, b := range bals {
		entries, err := s.LedgerEntries(id, false, 0)
		if err != nil {
			tb.Fatal(err)
		}
		keys, err := s.AccountKeys(id)
		if err != nil {
			tb.Fatal(err)
		}
		out[id] = []any{b, entries, keys}
	}
	return out
}

// checkInvariants checks, after every delivered command, what DESIGN.md
// promises of the ledger: balance = granted - charged, available >= 0,
// reserved >= 0, and Verify's recount from the entries.
func checkInvariants(tb testing.TB, s *persistence.Store, step int) {
	tb.Helper()
	bals, err := s.Balances()
	if err != nil {
		tb.Fatal(err)
	}
	for id, b := range bals {
		if ledger.Available(b) < 0 || b.GetReserved() < 0 || b.GetActiveJobs() < 0 {
			tb.Fatalf("step %d: account %s: %+v", step, id, b)
		}
	}
	if err := ledger.Verify(s); err != nil {
		tb.Fatalf("step %d: %v", step, err)
	}
}

// entry is a command at its log index.
type entry struct {
	index uint64
	cmd   *messages.LedgerCommand
}

// TestMachineReplayedDuplicatedReordered feeds a random log of commands to
// machines through a fake transport: as is; replayed whole from its first
// index, by a machine restarted on its store after every 50 entries (what a
// node does after a crash: the log is applied again from its last
// snapshot); with every command repeated as new entries (a client's
// retries); and with entries reordered and repeated. The invariants hold
// after every command on every machine; a replay changes nothing; retries
// of the log's commands change nothing; two replicas fed the same entries
// agree.
func TestMachineReplayedDuplicatedReordered(t *testing.T) {
	seed := uint64(20261205)
	rng := rand.New(rand.NewPCG(seed, seed))
	var log []entry
	for i, c := range randomCommands(rng, 600) {
		log = append(log, entry{uint64(i + 1), c})
	}
	apply := func(name string, stream []entry, restartEvery int) map[string]any {
		m, s := newMachine(t)
		refused, skipped := 0, 0
		for i, e := range stream {
			if restartEvery > 0 && i%restartEvery == 0 {
				m = ledger.NewMachine(s, slog.New(slog.DiscardHandler))
				if err := m.Load(); err != nil {
					t.Fatal(err)
				}
			}
			// Every replica decodes what the log holds.
			b, err := proto.Marshal(e.cmd)
			if err != nil {
				t.Fatal(err)
			}
			var got messages.LedgerCommand
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			switch m.Apply(e.index, &got).(type) {
			case *messages.LedgerError:
				refused++
			case nil:
				skipped++
			}
			if i%25 == 0 || i == len(stream)-1 {
				checkInvariants(t, s, i)
			}
		}
		t.Logf("%s: %d entries delivered, %d refused, %d skipped as applied", name, len(stream), refused, skipped)
		return ledgerState(t, s)
	}
	want := apply("the log", log, 0)

	// A replay: the log from its start again, the machine restarted often.
	var replay []entry
	for i := 0; i < len(log); i += 50 {
		replay = append(replay, log[:min(i+50, len(log))]...)
	}
	if diff := cmp.Diff(want, apply("the log replayed", replay, 50), protocmp.Transform()); diff != "" {
		t.Errorf("replaying the log changed the state (-once +replayed):\n%s", diff)
	}

	// Retries: each command again, right after itself, as new entries.
	var retried []entry
	for _, e := range log {
		retried = append(retried, entry{uint64(len(retried) + 1), e.cmd})
		for range rng.IntN(3) {
			retried = append(retried, entry{uint64(len(retried) + 1), e.cmd})
		}
	}
	if diff := cmp.Diff(want, apply("every command retried", retried, 0), protocmp.Transform()); diff != "" {
		t.Errorf("retried commands changed the state (-log +retried):\n%s", diff)
	}

	// Reordered: adjacent commands swapped, some repeated later. The state
	// may differ from the log's (a settlement that arrives before its
	// reservation is refused), but the invariants hold, and the entries
	// decide the state: two replicas agree.
	shuffled := append([]entry{}, retried...)
	for i := 0; i+1 < len(shuffled); i += 1 + rng.IntN(3) {
		shuffled[i], shuffled[i+1] = shuffled[i+1], shuffled[i]
	}
	for range len(shuffled) / 10 {
		shuffled = append(shuffled, shuffled[rng.IntN(len(shuffled))])
	}
	for i := range shuffled {
		shuffled[i].index = uint64(i + 1)
	}
	first := apply("reordered", shuffled, 0)
	if diff := cmp.Diff(first, apply("reordered, second replica", shuffled, 97), protocmp.Transform()); diff != "" {
		t.Errorf("two replicas fed the same entries differ:\n%s", diff)
	}
}

// sum is the SHA-256 of s.
func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
