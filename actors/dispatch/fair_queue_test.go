package dispatch

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/messages"
)

func work(account, job string, index int32) *messages.ChunkWork {
	return &messages.ChunkWork{AccountId: account, JobId: job, Range: &messages.ChunkRange{Index: index}, Attempt: 1}
}

// label names a work item "job/index" for readable diffs.
func label(w *messages.ChunkWork) string {
	if w == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s/%d", w.GetJobId(), w.GetRange().GetIndex())
}

func popAll(q *fairQueue) []string {
	var out []string
	for w := q.pop(); w != nil; w = q.pop() {
		out = append(out, label(w))
	}
	return out
}

// checkRings verifies the queue's internal bookkeeping: every account in the
// ring has jobs, every job with work is in its account's ring exactly once,
// the size is the sum of the waiting work, and the turn pointers are in range.
func checkRings(tb testing.TB, q *fairQueue) {
	tb.Helper()
	if len(q.accounts) != len(q.jobs) {
		tb.Fatalf("%d accounts in the ring, %d with jobs", len(q.accounts), len(q.jobs))
	}
	if len(q.accounts) > 0 && (q.next < 0 || q.next >= len(q.accounts)) {
		tb.Fatalf("account turn %d outside the ring of %d", q.next, len(q.accounts))
	}
	seenAcct := map[string]bool{}
	seenJob := map[string]bool{}
	size := 0
	for _, a := range q.accounts {
		if seenAcct[a] {
			tb.Fatalf("account %s twice in the ring %v", a, q.accounts)
		}
		seenAcct[a] = true
		ring := q.jobs[a]
		if ring == nil || len(ring.ids) == 0 {
			tb.Fatalf("account %s in the ring without jobs", a)
		}
		if ring.next < 0 || ring.next >= len(ring.ids) {
			tb.Fatalf("account %s: job turn %d outside its ring of %d", a, ring.next, len(ring.ids))
		}
		for _, j := range ring.ids {
			if seenJob[j] {
				tb.Fatalf("job %s twice in the rings", j)
			}
			seenJob[j] = true
			ws := q.work[j]
			if len(ws) == 0 {
				tb.Fatalf("job %s in the ring of %s without work", j, a)
			}
			for _, w := range ws {
				if w.GetAccountId() != a {
					tb.Fatalf("work of account %s in the ring of %s", w.GetAccountId(), a)
				}
			}
			size += len(ws)
		}
	}
	if len(seenJob) != len(q.work) {
		tb.Fatalf("%d jobs with work, %d in the rings", len(q.work), len(seenJob))
	}
	if size != q.len() {
		tb.Fatalf("len() = %d, %d work items waiting", q.len(), size)
	}
}

func TestFairQueueRoundRobin(t *testing.T) {
	q := newFairQueue()
	if w := q.pop(); w != nil {
		t.Fatalf("pop of an empty queue = %s", label(w))
	}
	for i := range int32(3) {
		q.push(work("A", "a1", i))
	}
	for i := range int32(2) {
		q.push(work("A", "a2", i))
	}
	for i := range int32(2) {
		q.push(work("B", "b1", i))
	}
	checkRings(t, q)
	if q.len() != 7 {
		t.Fatalf("len = %d, want 7", q.len())
	}
	// Turns go A, B, A, B ... and within A between a1 and a2; each job's
	// chunks in the order they came.
	want := []string{"a1/0", "b1/0", "a2/0", "b1/1", "a1/1", "a2/1", "a1/2"}
	if diff := cmp.Diff(want, popAll(q)); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
	if q.len() != 0 {
		t.Errorf("len after draining = %d", q.len())
	}
}

func TestFairQueueBigAccountDoesNotStarveSmallOne(t *testing.T) {
	q := newFairQueue()
	for i := range int32(100) {
		q.push(work("big", "big-job", i))
	}
	q.push(work("small", "small-job", 0))
	var first []string
	for range 2 {
		first = append(first, label(q.pop()))
	}
	if !slices.Contains(first, "small-job/0") {
		t.Errorf("first two pops = %v; the small account's chunk is not among them", first)
	}

	// A big job does not starve a small job of the same account either.
	q = newFairQueue()
	for i := range int32(100) {
		q.push(work("A", "big-job", i))
	}
	q.push(work("A", "small-job", 0))
	first = first[:0]
	for range 2 {
		first = append(first, label(q.pop()))
	}
	if !slices.Contains(first, "small-job/0") {
		t.Errorf("same account: first two pops = %v; the small job's chunk is not among them", first)
	}
}

// An account whose only waiting chunk is taken and that pushes a new one
// before the next pop (a steady stream of one-chunk jobs) must still take
// turns with an account that has a backlog.
func TestFairQueueRefillingAccountTakesTurns(t *testing.T) {
	q := newFairQueue()
	for i := range int32(10) {
		q.push(work("backlog", "b", i))
	}
	q.push(work("stream", "s0", 0))
	var got []string
	for i := 1; i <= 10; i++ {
		w := q.pop()
		got = append(got, label(w))
		if w.GetAccountId() == "stream" {
			q.push(work("stream", fmt.Sprintf("s%d", i), 0))
		}
	}
	backlog := 0
	for _, l := range got {
		if l[0] == 'b' {
			backlog++
		}
	}
	if backlog < 5 {
		t.Errorf("pops %v: the backlog account got %d of 10 turns, want at least 5", got, backlog)
	}
}

func TestFairQueueDrop(t *testing.T) {
	q := newFairQueue()
	for i := range int32(3) {
		q.push(work("A", "a1", i))
		q.push(work("A", "a2", i))
		q.push(work("B", "b1", i))
		q.push(work("C", "c1", i))
	}
	// Take a few turns so that the turn pointers are in the middle of the rings.
	got := []string{label(q.pop()), label(q.pop())}
	if diff := cmp.Diff([]string{"a1/0", "b1/0"}, got); diff != "" {
		t.Fatalf("first pops (-want +got):\n%s", diff)
	}
	q.drop("b1") // the only job of B: B leaves the ring
	checkRings(t, q)
	q.drop("a1")
	checkRings(t, q)
	q.drop("a1")      // twice is harmless
	q.drop("unknown") // as is an unknown job
	checkRings(t, q)
	if q.len() != 6 {
		t.Fatalf("len after drops = %d, want 6 (a2 ×3, c1 ×3)", q.len())
	}
	want := []string{"c1/0", "a2/0", "c1/1", "a2/1", "c1/2", "a2/2"}
	if diff := cmp.Diff(want, popAll(q)); diff != "" {
		t.Errorf("pops after drops (-want +got):\n%s", diff)
	}
	// A dropped job may come back (a new attempt) and is served again.
	q.push(work("B", "b1", 7))
	if got := label(q.pop()); got != "b1/7" {
		t.Errorf("pop after re-push = %s, want b1/7", got)
	}
	checkRings(t, q)
}

func TestFairQueueDropEveryPosition(t *testing.T) {
	// Drop each job at each turn position; the rest must come out complete,
	// in per-job order, with consistent rings.
	jobs := []struct{ acct, job string }{{"A", "a1"}, {"A", "a2"}, {"A", "a3"}, {"B", "b1"}, {"C", "c1"}, {"C", "c2"}}
	for pops := range 6 {
		for _, victim := range jobs {
			t.Run(fmt.Sprintf("%s after %d pops", victim.job, pops), func(t *testing.T) {
				q := newFairQueue()
				left := map[string]int{}
				for i := range int32(3) {
					for _, j := range jobs {
						q.push(work(j.acct, j.job, i))
						left[j.job]++
					}
				}
				next := map[string]int32{}
				take := func(w *messages.ChunkWork) {
					t.Helper()
					if w.GetJobId() == victim.job && left[victim.job] == 0 {
						t.Fatalf("popped %s after it was dropped", label(w))
					}
					if w.GetRange().GetIndex() != next[w.GetJobId()] {
						t.Fatalf("popped %s, want chunk %d of that job next", label(w), next[w.GetJobId()])
					}
					next[w.GetJobId()]++
					left[w.GetJobId()]--
				}
				for range pops {
					take(q.pop())
				}
				q.drop(victim.job)
				left[victim.job] = 0
				checkRings(t, q)
				for w := q.pop(); w != nil; w = q.pop() {
					take(w)
					checkRings(t, q)
				}
				for j, n := range left {
					if n != 0 {
						t.Errorf("job %s: %d chunks never popped", j, n)
					}
				}
			})
		}
	}
}

// TestFairQueueRandomOps pushes, pops and drops at random and checks, after
// every operation, that no work is lost or duplicated, that each job's work
// comes out in the order it went in, that the rings stay consistent, and
// that turns are fair: while an account waits, no other account is served
// twice, and while a job waits, no other job of its account is served twice.
func TestFairQueueRandomOps(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			q := newFairQueue()
			accounts := []string{"A", "B", "C", "D"}
			waiting := map[string][]int32{} // job -> indexes waiting, in push order
			jobAcct := map[string]string{}
			nextIndex := map[string]int32{}
			// servedSince[x][y]: how often y was served while x waited.
			acctServed := map[string]map[string]int{}
			jobServed := map[string]map[string]int{}
			acctWaiting := func(a string) bool {
				for j, ws := range waiting {
					if jobAcct[j] == a && len(ws) > 0 {
						return true
					}
				}
				return false
			}
			popped, pushed, dropped := 0, 0, 0
			for step := range 3000 {
				switch op := rng.IntN(10); {
				case op < 5: // push
					a := accounts[rng.IntN(len(accounts))]
					j := fmt.Sprintf("%s-j%d", a, rng.IntN(4))
					if !acctWaiting(a) {
						acctServed[a] = map[string]int{}
					}
					if len(waiting[j]) == 0 {
						jobServed[j] = map[string]int{}
					}
					jobAcct[j] = a
					i := nextIndex[j]
					nextIndex[j]++
					q.push(work(a, j, i))
					waiting[j] = append(waiting[j], i)
					pushed++
				case op < 9: // pop
					w := q.pop()
					total := 0
					for _, ws := range waiting {
						total += len(ws)
					}
					if w == nil {
						if total != 0 {
							t.Fatalf("step %d: pop gave nothing with %d waiting", step, total)
						}
						continue
					}
					j, a := w.GetJobId(), w.GetAccountId()
					ws := waiting[j]
					if len(ws) == 0 {
						t.Fatalf("step %d: popped %s, which is not waiting (lost drop or duplicate)", step, label(w))
					}
					if ws[0] != w.GetRange().GetIndex() {
						t.Fatalf("step %d: popped %s, want %s/%d first", step, label(w), j, ws[0])
					}
					waiting[j] = ws[1:]
					popped++
					for other, served := range acctServed {
						if other != a && acctWaiting(other) {
							served[a]++
							if served[a] > 1 {
								t.Fatalf("step %d: account %s served twice while %s waited", step, a, other)
							}
						}
					}
					acctServed[a] = map[string]int{}
					for other, served := range jobServed {
						if other != j && jobAcct[other] == a && len(waiting[other]) > 0 {
							served[j]++
							if served[j] > 1 {
								t.Fatalf("step %d: job %s served twice while %s of the same account waited", step, j, other)
							}
						}
					}
					jobServed[j] = map[string]int{}
				default: // drop
					a := accounts[rng.IntN(len(accounts))]
					j := fmt.Sprintf("%s-j%d", a, rng.IntN(4))
					dropped += len(waiting[j])
					q.drop(j)
					waiting[j] = nil
				}
				checkRings(t, q)
				total := 0
				for _, ws := range waiting {
					total += len(ws)
				}
				if q.len() != total {
					t.Fatalf("step %d: len() = %d, model has %d waiting", step, q.len(), total)
				}
			}
			// Drain: everything still waiting comes out exactly once.
			for w := q.pop(); w != nil; w = q.pop() {
				j := w.GetJobId()
				if len(waiting[j]) == 0 || waiting[j][0] != w.GetRange().GetIndex() {
					t.Fatalf("drain: popped %s out of order or twice", label(w))
				}
				waiting[j] = waiting[j][1:]
				popped++
			}
			if popped+dropped != pushed {
				t.Errorf("pushed %d, popped %d, dropped %d: work lost or duplicated", pushed, popped, dropped)
			}
		})
	}
}
