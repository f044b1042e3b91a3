package main

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// TestClusterLedgerVoidsLeftovers: a node that does not hold the ledger
// records a pending reservation before it asks the ledger, and the job in
// the same write that removes it. Reservations it left pending (it crashed
// after the ledger reserved, or the ledger's answer was lost) are voided when
// it starts again: all the credits come back, and a reservation that reaches
// the ledger after its void is refused.
func TestClusterLedgerVoidsLeftovers(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	cl, acctID := n2.newAccount(t, "leftovers", 100)
	n2.stop()
	n1.stop()

	// As if n2 had crashed mid-submission twice: the ledger (n1's store, its
	// real LedgerActor) reserved "made"; "lost" never reached it.
	const made, lost = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"
	withStore(t, n1.dataDir, func(s *persistence.Store) {
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
		pid := system.Root.Spawn(ledger.Props(s, slog.New(slog.DiscardHandler), nil))
		lc := ledger.NewClient(system.Root, pid, 10*time.Second)
		if _, err := lc.Reserve(t.Context(), &messages.ReserveCredits{AccountId: acctID, JobId: made, Amount: 30, OwnerNode: n2.name}); err != nil {
			t.Fatal(err)
		}
		if err := system.Root.StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
	})
	withStore(t, n2.dataDir, func(s *persistence.Store) {
		b := s.NewBatch()
		b.PutPending(&messages.PendingReservation{JobId: made, AccountId: acctID, Amount: 30, AtUnixMs: 1})
		b.PutPending(&messages.PendingReservation{JobId: lost, AccountId: acctID, Amount: 20, AtUnixMs: 1})
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	})

	n1.start()
	if got := n1.client(cl.token).credits(t).standing(); got.Reserved != 30 || got.Available != 70 {
		t.Fatalf("before n2 is back: %+v, want 30 reserved for the job it never recorded", got)
	}
	n2.start()
	pollUntil(t, 30*time.Second, "n2 voided what it left pending", func() bool {
		return len(n2.logRecords(t, "voided the reservation of a job that was not recorded", nil)) == 2
	})
	checkAccount(t, cl, 100, 0)
	var cr struct {
		Entries []struct {
			Kind   string `json:"kind"`
			Amount int64  `json:"amount"`
			JobID  string `json:"job_id"`
		} `json:"entries"`
	}
	cl.get(t, "/v1/credits?recent=10").decode(t, http.StatusOK, &cr)
	moved := map[string]int64{}
	for _, e := range cr.Entries {
		moved[e.JobID+" "+e.Kind] += e.Amount
	}
	for k, want := range map[string]int64{made + " reserve": 30, made + " refund": 30, made + " charge": 0, lost + " charge": 0, lost + " refund": 0} {
		if got, ok := moved[k]; !ok || got != want {
			t.Errorf("ledger entry %q: %d (present %v), want %d; entries %+v", k, got, ok, want, cr.Entries)
		}
	}
	if _, ok := moved[lost+" reserve"]; ok {
		t.Errorf("the lost job has a reservation: %+v", cr.Entries)
	}
	// Nothing pending is left on n2.
	n2.stop()
	withStore(t, n2.dataDir, func(s *persistence.Store) {
		if p, err := s.PendingReservations(); err != nil || len(p) != 0 {
			t.Errorf("n2 still has pending reservations %v (%v)", p, err)
		}
	})
}

// withStore opens a stopped node's store.
func withStore(t *testing.T, dataDir string, fn func(*persistence.Store)) {
	t.Helper()
	s, err := persistence.Open(dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	fn(s)
}
