package persistence

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/messages"
)

func TestAllJobIDsNewestFirstAcrossAccounts(t *testing.T) {
	s := openStore(t)
	var ids []string // oldest first
	for i := range 7 {
		id := newJobID(t)
		ids = append(ids, id)
		account := []string{"acct-a", "acct-b", "acct-c"}[i%3]
		// Logs of different lengths: the walk must land on each job once.
		evs := []*messages.JobEvent{created(id, account, 1), planned(id, 2, 3)}
		for k := range i {
			evs = append(evs, chunkDone(id, int64(3+k), int32(k%3)))
		}
		if err := s.AppendJobEvents(evs...); err != nil {
			t.Fatal(err)
		}
	}
	newest := slices.Clone(ids)
	slices.Reverse(newest)

	list := func(after string, limit int) []string {
		t.Helper()
		var got []string
		err := s.AllJobIDs(after, func(id string) (bool, error) {
			got = append(got, id)
			return len(got) < limit, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if diff := cmp.Diff(newest, list("", 100)); diff != "" {
		t.Errorf("all jobs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(newest[:3], list("", 3)); diff != "" {
		t.Errorf("first page (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(newest[3:], list(newest[2], 100)); diff != "" {
		t.Errorf("after the cursor (-want +got):\n%s", diff)
	}
	if got := list(newest[len(newest)-1], 100); len(got) != 0 {
		t.Errorf("after the oldest job: %v, want none", got)
	}
}

func TestAllJobIDsEmptyStore(t *testing.T) {
	s := openStore(t)
	err := s.AllJobIDs("", func(id string) (bool, error) {
		t.Errorf("empty store listed %s", id)
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
