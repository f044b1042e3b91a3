package node_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
)

// TestAdminJobs checks the operator's view: every account's jobs, newest
// first, read and cancelled by id alone, the cancel refunding the job's own
// account.
func TestAdminJobs(t *testing.T) {
	path := corpusFile(t, pdf4Pages)
	blocked := make(chan struct{}, 1)
	e := newEnv(t, func(ctx context.Context, req extract.Request, _ int) error {
		if req.FirstPage == 2 {
			select {
			case blocked <- struct{}{}:
			default:
			}
			<-ctx.Done() // only cancellation ends it
			return ctx.Err()
		}
		return nil
	})
	n := e.start(nil)
	alice, bob := createAccount(t, n, 100), createAccount(t, n, 100)
	first := mustSubmit(t, n, alice, path, "text", 2)
	waitEnded(t, n, alice, first.ID)
	second := mustSubmit(t, n, bob, path, "text", 2)
	waitEnded(t, n, bob, second.ID)
	running := mustSubmit(t, n, alice, path, faultyName, 1)
	receive(t, "chunk 1 to block", blocked)
	waitFor(t, "the other three chunks to be done", func() bool {
		return jobState(t, n, alice, running.ID).Counts().Done == 3
	})

	ids, err := n.AllJobIDs(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{running.ID, second.ID, first.ID}, ids); diff != "" {
		t.Errorf("AllJobIDs, newest first over both accounts (-want +got):\n%s", diff)
	}
	if ids, _ := n.AllJobIDs(t.Context(), running.ID, 1); !cmp.Equal(ids, []string{second.ID}) {
		t.Errorf("AllJobIDs after the newest, one: %v, want [%s]", ids, second.ID)
	}

	st, err := n.JobAdmin(t.Context(), second.ID)
	if err != nil || st.Created.GetAccountId() != bob.GetId() || st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Errorf("JobAdmin(bob's job): %v, %v", st, err)
	}
	for _, id := range []string{"not-a-uuid", "01900000-0000-7000-8000-000000000000"} {
		if _, err := n.JobAdmin(t.Context(), id); !errors.Is(err, node.ErrJobNotFound) {
			t.Errorf("JobAdmin(%s): %v, want ErrJobNotFound", id, err)
		}
	}

	if _, err := n.CancelAdmin(t.Context(), second.ID); !errors.Is(err, node.ErrJobFinished) {
		t.Errorf("CancelAdmin of an ended job: %v, want ErrJobFinished", err)
	}
	if _, err := n.CancelAdmin(t.Context(), running.ID); err != nil {
		t.Fatalf("CancelAdmin: %v", err)
	}
	st = waitEnded(t, n, alice, running.ID)
	if st.Status != messages.JobStatus_JOB_STATUS_CANCELLED {
		t.Errorf("cancelled by the admin: status %s", st.Status.Label())
	}
	// Alice paid 4 pages for her first job, and the cancelled job's three
	// other pages; its blocked page went back to her.
	checkCredits(t, n, running.ID, credits{Reserved: 4, Charged: 3, Refunded: 1})
	checkBalance(t, n, alice, &messages.Balance{Granted: 100, Charged: 7})
	checkBalance(t, n, bob, &messages.Balance{Granted: 100, Charged: 4})
}
