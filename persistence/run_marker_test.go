package persistence

import (
	"testing"
	"time"
)

// TestRunMarker: BeginRun reports a crash exactly when the process before
// did not EndRun, across a reopen of the store (what a crash leaves).
func TestRunMarker(t *testing.T) {
	s := openStore(t)
	steps := []struct {
		name        string
		reopen, end bool // before BeginRun: reopen the store, EndRun
		wantCrashed bool
	}{
		{name: "first start of a new store"},
		{name: "started again without a clean stop", reopen: true, wantCrashed: true},
		{name: "after a clean stop", reopen: true, end: true},
		{name: "again after a crash", reopen: true, wantCrashed: true},
		{name: "clean stop, same store open", end: true},
	}
	for _, step := range steps {
		if step.end {
			if err := s.EndRun(); err != nil {
				t.Fatalf("%s: EndRun: %v", step.name, err)
			}
		}
		if step.reopen {
			s = reopen(t, s)
		}
		crashed, err := s.BeginRun(time.Now())
		if err != nil {
			t.Fatalf("%s: BeginRun: %v", step.name, err)
		}
		if crashed != step.wantCrashed {
			t.Errorf("%s: BeginRun says crashed=%v, want %v", step.name, crashed, step.wantCrashed)
		}
	}
}
