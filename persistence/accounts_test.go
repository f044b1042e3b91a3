package persistence

import (
	"errors"
	"testing"

	"github.com/quirehq/quire/messages"
)

func TestAccountRefAndPages(t *testing.T) {
	s := openStore(t)
	b := s.NewBatch()
	// Stored out of number order: ids do not sort like numbers.
	for _, a := range []*messages.Account{
		{Id: "acct_c", Number: 3, Name: "c"}, {Id: "acct_a", Number: 10, Name: "a"},
		{Id: "acct_b", Number: 2, Name: "b"}, {Id: "acct_d", Number: 1, Name: "d"},
	} {
		b.PutAccount(a)
	}
	must(t, b.Commit())

	for _, tc := range []struct {
		ref, wantID string
	}{
		{"10", "acct_a"}, {"2", "acct_b"}, {"acct_c", "acct_c"}, {"01", "acct_d"},
		{"4", ""}, {"acct_x", ""}, {"", ""}, {"-1", ""},
	} {
		a, err := s.AccountRef(tc.ref)
		switch {
		case tc.wantID == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("AccountRef(%q) = %v, %v; want ErrNotFound", tc.ref, a, err)
		case tc.wantID != "" && (err != nil || a.GetId() != tc.wantID):
			t.Errorf("AccountRef(%q) = %v, %v; want %s", tc.ref, a, err, tc.wantID)
		}
	}

	for _, tc := range []struct {
		after    int64
		limit    int
		want     []int64
		wantMore bool
	}{
		{0, 2, []int64{1, 2}, true},
		{2, 2, []int64{3, 10}, false},
		{0, 4, []int64{1, 2, 3, 10}, false},
		{3, 1, []int64{10}, false},
		{10, 5, nil, false},
	} {
		page, more, err := s.AccountsByNumber(tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, a := range page {
			got = append(got, a.GetNumber())
		}
		if len(got) != len(tc.want) || more != tc.wantMore {
			t.Errorf("AccountsByNumber(%d, %d) = %v more=%v; want %v more=%v", tc.after, tc.limit, got, more, tc.want, tc.wantMore)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("AccountsByNumber(%d, %d) = %v; want %v", tc.after, tc.limit, got, tc.want)
				break
			}
		}
	}
}
