package node_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
)

// TestRouteFor: the policy's rule, at its edges.
func TestRouteFor(t *testing.T) {
	const mib = 1 << 20
	p := func(async bool, pct, size int32) *messages.RolloutPolicy {
		return &messages.RolloutPolicy{AsyncEnabled: async, Percentage: pct, SizeThresholdMb: size}
	}
	for _, tc := range []struct {
		policy  *messages.RolloutPolicy
		account int64
		bytes   int64
		want    string
	}{
		{p(true, 30, 10), 29, mib, node.RouteAsync},
		{p(true, 30, 10), 30, mib, node.RouteSync},
		{p(true, 30, 10), 129, mib, node.RouteAsync}, // number % 100
		{p(true, 30, 10), 130, mib, node.RouteSync},
		{p(true, 30, 10), 100, mib, node.RouteAsync}, // cohort 0
		{p(true, 0, 10), 1, mib, node.RouteSync},
		{p(true, 100, 10), 99, mib, node.RouteAsync},
		// Larger than the threshold: async whatever the percentage.
		{p(true, 0, 10), 50, 10 * mib, node.RouteSync},
		{p(true, 0, 10), 50, 10*mib + 1, node.RouteAsync},
		{p(true, 0, 0), 50, 1, node.RouteAsync},
		// Switched off: sync, large uploads too.
		{p(false, 100, 10), 1, mib, node.RouteSync},
		{p(false, 100, 10), 1, 500 * mib, node.RouteSync},
		// The defaults: everyone async.
		{ledger.DefaultRollout(), 77, mib, node.RouteAsync},
	} {
		t.Run(fmt.Sprintf("%v/account %d/%d bytes", tc.policy, tc.account, tc.bytes), func(t *testing.T) {
			if got := node.RouteFor(tc.policy, tc.account, tc.bytes); got != tc.want {
				t.Errorf("RouteFor = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestNodeRollout: a node routes by the defaults until the policy is set,
// by the new policy at once after SetRollout, refuses an invalid one, and
// reads the stored one again when it restarts.
func TestNodeRollout(t *testing.T) {
	e := newEnv(t, nil)
	n := e.start(nil)
	if diff := cmp.Diff(ledger.DefaultRollout(), n.Rollout(), protocmp.Transform()); diff != "" {
		t.Fatalf("policy of a new node (-want +got):\n%s", diff)
	}
	for _, bad := range []*messages.RolloutPolicy{
		{AsyncEnabled: true, Percentage: 101, SizeThresholdMb: 10},
		{AsyncEnabled: true, Percentage: -1, SizeThresholdMb: 10},
		{AsyncEnabled: true, Percentage: 10, SizeThresholdMb: -1},
	} {
		if _, err := n.SetRollout(t.Context(), bad); !errors.Is(err, node.ErrInvalidRequest) {
			t.Errorf("SetRollout(%v): %v, want ErrInvalidRequest", bad, err)
		}
	}
	set, err := n.SetRollout(t.Context(), &messages.RolloutPolicy{AsyncEnabled: true, Percentage: 30, SizeThresholdMb: 10})
	if err != nil {
		t.Fatal(err)
	}
	if set.GetVersion() != 1 || set.GetPercentage() != 30 {
		t.Fatalf("SetRollout answered %v", set)
	}
	if diff := cmp.Diff(set, n.Rollout(), protocmp.Transform()); diff != "" {
		t.Fatalf("policy right after SetRollout (-want +got):\n%s", diff)
	}
	if got := n.Route(29, 1); got != node.RouteAsync {
		t.Errorf("Route(29) = %s, want async", got)
	}
	if got := n.Route(30, 1); got != node.RouteSync {
		t.Errorf("Route(30) = %s, want sync", got)
	}

	// The emergency switch leaves the rest as it is; saying it again writes nothing.
	off, changed, err := n.SetAsyncEnabled(t.Context(), false)
	if err != nil || !changed || off.GetAsyncEnabled() || off.GetPercentage() != 30 || off.GetVersion() != 2 {
		t.Fatalf("SetAsyncEnabled(false) = %v, %t, %v", off, changed, err)
	}
	again, changed, err := n.SetAsyncEnabled(t.Context(), false)
	if err != nil || changed || again.GetVersion() != 2 {
		t.Fatalf("SetAsyncEnabled(false) again = %v, %t, %v", again, changed, err)
	}
	if got := n.Route(1, 500<<20); got != node.RouteSync {
		t.Errorf("Route of a large upload while switched off = %s, want sync", got)
	}

	n.Close()
	n = e.start(nil)
	if diff := cmp.Diff(off, n.Rollout(), protocmp.Transform()); diff != "" {
		t.Fatalf("policy after a restart (-want +got):\n%s", diff)
	}
}

// TestSubmitSyncPageLimit: a submission's own page limit refuses a larger
// PDF before anything is charged; the route is recorded on the job.
func TestSubmitSyncPageLimit(t *testing.T) {
	e := newEnv(t, nil)
	n := e.start(nil)
	acct := createAccount(t, n, defaultCredits)
	path := corpusFile(t, pdf4Pages)
	sub := func(route string, maxPages int) (string, error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		up, err := n.NewUpload()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Receive(f, 64<<20); err != nil {
			t.Fatal(err)
		}
		st, err := n.Submit(t.Context(), node.Submission{
			Account: acct, Upload: up, FileName: filepath.Base(path), Route: route, MaxPages: maxPages,
		})
		if err != nil {
			return "", err
		}
		return st.ID, nil
	}
	if _, err := sub(node.RouteSync, 3); !errors.Is(err, node.ErrTooManyPages) {
		t.Fatalf("4 pages with a limit of 3: %v, want ErrTooManyPages", err)
	}
	checkBalance(t, n, acct, &messages.Balance{AccountId: acct.GetId(), Granted: defaultCredits})
	checkClean(t, n)

	id, err := sub(node.RouteSync, 4)
	if err != nil {
		t.Fatal(err)
	}
	if st := waitEnded(t, n, acct, id); st.Created.GetRoute() != node.RouteSync {
		t.Errorf("route of the sync job: %q", st.Created.GetRoute())
	}
	id, err = sub("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := waitEnded(t, n, acct, id); st.Created.GetRoute() != node.RouteAsync {
		t.Errorf("route of a job submitted without one: %q, want async", st.Created.GetRoute())
	}
}
