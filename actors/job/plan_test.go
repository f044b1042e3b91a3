package job

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/messages"
)

func TestPlan(t *testing.T) {
	r := func(i, first, last int32) *messages.ChunkRange {
		return &messages.ChunkRange{Index: i, FirstPage: first, LastPage: last}
	}
	tests := []struct {
		name              string
		pages, chunkPages int
		want              []*messages.ChunkRange
	}{
		{"one page", 1, 30, []*messages.ChunkRange{r(0, 1, 1)}},
		{"exactly one chunk", 30, 30, []*messages.ChunkRange{r(0, 1, 30)}},
		{"one over", 31, 30, []*messages.ChunkRange{r(0, 1, 30), r(1, 31, 31)}},
		{"311 pages", 311, 100, []*messages.ChunkRange{r(0, 1, 100), r(1, 101, 200), r(2, 201, 300), r(3, 301, 311)}},
		{"chunk of one page", 3, 1, []*messages.ChunkRange{r(0, 1, 1), r(1, 2, 2), r(2, 3, 3)}},
		{"no pages", 0, 30, nil},
		{"bad chunk size", 10, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.pages, tc.chunkPages)
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Plan(%d, %d) (-want +got):\n%s", tc.pages, tc.chunkPages, diff)
			}
		})
	}
}

func TestPlanCoversEveryPageOnce(t *testing.T) {
	for pages := 1; pages <= 200; pages++ {
		for _, cp := range []int{1, 7, 30, 199, 500} {
			seen := make([]int, pages+1)
			for _, c := range Plan(pages, cp) {
				if n := c.GetLastPage() - c.GetFirstPage() + 1; n < 1 || int(n) > cp {
					t.Fatalf("Plan(%d,%d): chunk %d has %d pages", pages, cp, c.GetIndex(), n)
				}
				for p := c.GetFirstPage(); p <= c.GetLastPage(); p++ {
					seen[p]++
				}
			}
			for p := 1; p <= pages; p++ {
				if seen[p] != 1 {
					t.Fatalf("Plan(%d,%d): page %d covered %d times", pages, cp, p, seen[p])
				}
			}
		}
	}
}
