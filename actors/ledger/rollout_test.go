package ledger_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
)

// TestRolloutDefaults: a ledger where no policy was ever set answers the
// defaults, version 0, and stores nothing for it.
func TestRolloutDefaults(t *testing.T) {
	h := newHarness(t)
	got, err := h.client.Rollout(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := &messages.RolloutPolicy{AsyncEnabled: true, Percentage: 100, SizeThresholdMb: 10}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("default policy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, ledger.DefaultRollout(), protocmp.Transform()); diff != "" {
		t.Errorf("DefaultRollout (-want +got):\n%s", diff)
	}
}

// TestRolloutDurable sets the policy several times: each change gets the next
// version and the ledger's time, and what was last set is what a restarted
// ledger (a reopened store) answers.
func TestRolloutDurable(t *testing.T) {
	h := newHarness(t)
	steps := []*messages.RolloutPolicy{
		{AsyncEnabled: true, Percentage: 30, SizeThresholdMb: 10},
		{AsyncEnabled: false, Percentage: 30, SizeThresholdMb: 10},
		// The version and time a caller sends are ignored: they are the ledger's.
		{AsyncEnabled: true, Percentage: 0, SizeThresholdMb: 25, Version: 99, UpdatedUnixMs: 5},
	}
	var last *messages.RolloutPolicy
	for i, p := range steps {
		got, err := h.client.SetRollout(t.Context(), p)
		if err != nil {
			t.Fatalf("step %d: SetRollout: %v", i, err)
		}
		want := &messages.RolloutPolicy{
			AsyncEnabled: p.GetAsyncEnabled(), Percentage: p.GetPercentage(), SizeThresholdMb: p.GetSizeThresholdMb(),
			Version: int64(i + 1), UpdatedUnixMs: 1_700_000_000_000,
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Fatalf("step %d: SetRollout answered (-want +got):\n%s", i, diff)
		}
		read, err := h.client.Rollout(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, read, protocmp.Transform()); diff != "" {
			t.Fatalf("step %d: Rollout after the set (-want +got):\n%s", i, diff)
		}
		last = want
	}

	h.restart()
	got, err := h.client.Rollout(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(last, got, protocmp.Transform()); diff != "" {
		t.Fatalf("policy after a restart (-want +got):\n%s", diff)
	}
	stored, err := h.store.Rollout()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(last, stored, protocmp.Transform()); diff != "" {
		t.Fatalf("policy in the store (-want +got):\n%s", diff)
	}

	// The version keeps growing after the restart.
	next, err := h.client.SetRollout(t.Context(), &messages.RolloutPolicy{AsyncEnabled: true, Percentage: 50, SizeThresholdMb: 10})
	if err != nil {
		t.Fatal(err)
	}
	if next.GetVersion() != last.GetVersion()+1 {
		t.Fatalf("version after the restart: %d, want %d", next.GetVersion(), last.GetVersion()+1)
	}
}

// TestRolloutRefused: a percentage outside 0..100, a negative size threshold
// or no policy at all is refused as invalid, and the policy stays as it was.
func TestRolloutRefused(t *testing.T) {
	h := newHarness(t)
	before, err := h.client.SetRollout(t.Context(), &messages.RolloutPolicy{AsyncEnabled: true, Percentage: 40, SizeThresholdMb: 10})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*messages.RolloutPolicy{
		"percentage above 100":     {AsyncEnabled: true, Percentage: 101, SizeThresholdMb: 10},
		"negative percentage":      {AsyncEnabled: true, Percentage: -1, SizeThresholdMb: 10},
		"negative size threshold":  {AsyncEnabled: true, Percentage: 10, SizeThresholdMb: -5},
		"no policy in the message": nil,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.client.SetRollout(t.Context(), p)
			if !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("SetRollout(%v): %v, want ErrInvalid", p, err)
			}
			got, err := h.client.Rollout(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, got, protocmp.Transform()); diff != "" {
				t.Fatalf("policy changed by a refused request (-want +got):\n%s", diff)
			}
		})
	}
}
