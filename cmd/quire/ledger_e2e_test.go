package main

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/quirehq/quire/persistence"
)

// TestClusterLedgerVoidsLeftovers: a node records a pending reservation
// before it asks the ledger, and the job in the same write that removes it.
// A quirefault build of n3 crashes (SIGKILL) once after the ledger reserved a
// submission's credits ("made") and once before asking it ("lost"). When n3
// starts again it voids both: all the credits come back, and the job whose
// reservation never arrived is marked settled so that a late one is refused.
func TestClusterLedgerVoidsLeftovers(t *testing.T) {
	c := startCluster(t, 3)
	n3 := c.nodes[2]
	cl, _ := c.nodes[0].newAccount(t, "leftovers", 100)
	file := corpusFile(t, "camlidl-manual-26p.pdf")
	crashOnce := func(when, known string) string {
		t.Helper()
		n3.stop()
		n3.bin, n3.env = quireFaultBinary(t), append(n3.env, "QUIRE_FAULT_CRASH_RESERVE="+when)
		n3.start()
		body, ct := multipartBody(t, file, nil)
		if r, err := n3.client(cl.token).try(t, http.MethodPost, "/v1/jobs", body, ct); err == nil {
			t.Fatalf("n3 answered a submission it should have crashed on (%s the ledger): %s", when, r)
		}
		select {
		case <-n3.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("n3 did not crash %s the ledger reserved", when)
		}
		n3.env = n3.env[:len(n3.env)-1]
		var job string
		withStore(t, n3.dataDir, func(s *persistence.Store) {
			p, err := s.PendingReservations()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p {
				if r.GetJobId() != known {
					job = r.GetJobId()
				}
			}
		})
		return job
	}
	made := crashOnce("after", "")
	if got := c.nodes[0].client(cl.token).credits(t).standing(); got.Reserved != 26 {
		t.Fatalf("after the crash past the reservation: %+v, want the 26 pages reserved", got)
	}
	lost := crashOnce("before", made)
	if made == "" || lost == "" || made == lost {
		t.Fatalf("pending reservations left by the crashes: %q and %q", made, lost)
	}
	n3.bin = quireBinary(t)
	n3.start()
	pollUntil(t, 30*time.Second, "n3 voided what it left pending", func() bool {
		return len(n3.logRecords(t, "voided the reservation of a job that was not recorded", nil)) == 2
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
	for k, want := range map[string]int64{made + " reserve": 26, made + " refund": 26, made + " charge": 0, lost + " charge": 0, lost + " refund": 0} {
		if got, ok := moved[k]; !ok || got != want {
			t.Errorf("ledger entry %q: %d (present %v), want %d; entries %+v", k, got, ok, want, cr.Entries)
		}
	}
	if _, ok := moved[lost+" reserve"]; ok {
		t.Errorf("the lost job has a reservation: %+v", cr.Entries)
	}
	// Nothing pending is left on n3.
	n3.stop()
	withStore(t, n3.dataDir, func(s *persistence.Store) {
		if p, err := s.PendingReservations(); err != nil || len(p) != 0 {
			t.Errorf("n3 still has pending reservations %v (%v)", p, err)
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
