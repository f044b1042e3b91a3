package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/text"
	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
)

// crash ends n the way a crash (SIGKILL, the OOM killer) would leave its
// store: Close stops every actor, so nothing more is written, and then the
// run marker a clean stop removes is put back, as if Close never ran.
func crash(tb testing.TB, e *env, n *node.Node) {
	tb.Helper()
	n.Close()
	if _, err := e.store.BeginRun(time.Now()); err != nil {
		tb.Fatal(err)
	}
}

// blockPage5 blocks every attempt at the chunk that starts on page 5 until
// its node stops; the other chunks run for real.
func blockPage5(ctx context.Context, req extract.Request, _ int) error {
	if req.FirstPage != 5 {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

// waitRunning waits until chunk index of job id has been recorded as started
// for the calls-th time (the extractor was called calls times).
func waitRunning(tb testing.TB, e *env, n *node.Node, acct *messages.Account, id string, index int32, calls int) {
	tb.Helper()
	waitFor(tb, fmt.Sprintf("chunk %d to run for the %d. time", index, calls), func() bool {
		c := jobState(tb, n, acct, id).Chunks[index]
		return c.Status == job.ChunkRunning && e.faulty.calls(id, int(c.Range.GetFirstPage())) == calls
	})
}

// checkOnlyChunk1Failed checks a job of the 16-page file in chunks of 4
// pages (account acct granted 100 credits) whose chunk 1 failed for good:
// the other chunks were done at their first attempt, the outputs and credits
// are exact, and the node still runs the next job.
func checkOnlyChunk1Failed(tb testing.TB, n *node.Node, e *env, acct *messages.Account, st *job.State, path string) {
	tb.Helper()
	for _, i := range []int{0, 2, 3} {
		if c := st.Chunks[i]; c.Status != job.ChunkDone || c.Attempts != 1 || c.Crashes != 0 {
			tb.Errorf("chunk %d: %s after %d attempts and %d crashes, want done after 1 and none", i, c.Status, c.Attempts, c.Crashes)
		}
	}
	checkOutputs(tb, n, e, acct, st.ID, path)
	checkCredits(tb, n, st.ID, credits{Reserved: 16, Charged: 12, Refunded: 4})
	checkBalance(tb, n, acct, &messages.Balance{Granted: 100, Charged: 12})

	// The node still works.
	small := corpusFile(tb, pdf3Pages)
	st2 := waitEnded(tb, n, acct, mustSubmit(tb, n, acct, small, text.Name, 1).ID)
	if st2.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		tb.Fatalf("the next job: status %s, want completed", st2.Status.Label())
	}
	checkOutputs(tb, n, e, acct, st2.ID, small)
	checkCredits(tb, n, st2.ID, credits{Reserved: 3, Charged: 3})
	checkBalance(tb, n, acct, &messages.Balance{Granted: 100, Charged: 15})
}

// TestChunkInFlightAtCrashesFailsForGood: a chunk that was running each time
// its node crashed fails for good at the max-chunk-crashes-th crash, with a
// clear error and its pages refunded; the job's other chunks are charged, and
// the node goes on serving.
func TestChunkInFlightAtCrashesFailsForGood(t *testing.T) {
	path := corpusFile(t, pdf16Pages)
	for _, maxCrashes := range []int{1, node.DefaultMaxChunkCrashes, 3} {
		t.Run(fmt.Sprintf("max-%d", maxCrashes), func(t *testing.T) {
			e := newEnv(t, blockPage5)
			tweak := func(c *node.Config) { c.MaxChunkCrashes = maxCrashes; c.ChunkTimeout = time.Hour }
			n := e.start(tweak)
			acct := createAccount(t, n, 100)
			st := mustSubmit(t, n, acct, path, faultyName, 4) // chunks 1-4, 5-8, 9-12, 13-16
			waitFor(t, "the other three chunks done", func() bool { return jobState(t, n, acct, st.ID).Counts().Done == 3 })
			for i := 1; i <= maxCrashes; i++ {
				waitRunning(t, e, n, acct, st.ID, 1, i)
				crash(t, e, n)
				n = e.start(tweak)
			}

			st = waitEnded(t, n, acct, st.ID)
			if st.Status != messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED {
				t.Fatalf("status %s, want partially_completed", st.Status.Label())
			}
			bad := st.Chunks[1]
			if bad.Status != job.ChunkFailed || bad.Crashes != int32(maxCrashes) || bad.Lost != int32(maxCrashes) || bad.Attempts != int32(maxCrashes) {
				t.Errorf("chunk 1: %s with %d crashes, %d lost, %d attempts; want failed with %d of each",
					bad.Status, bad.Crashes, bad.Lost, bad.Attempts, maxCrashes)
			}
			if want := fmt.Sprintf("the chunk was in flight when its node crashed %d times", maxCrashes); bad.Error != want {
				t.Errorf("chunk 1 error %q, want %q", bad.Error, want)
			}
			if got := e.faulty.calls(st.ID, 5); got != maxCrashes {
				t.Errorf("chunk 1 was attempted %d times, want %d (none after the last crash)", got, maxCrashes)
			}
			checkOnlyChunk1Failed(t, n, e, acct, st, path)
			checkClean(t, n)
		})
	}
}

// TestCleanStopsAreNotCrashes: a chunk running each time its node is closed
// cleanly (SIGTERM) is lost and tried again, never counted as crashed.
func TestCleanStopsAreNotCrashes(t *testing.T) {
	path := corpusFile(t, pdf16Pages)
	e := newEnv(t, blockPage5)
	tweak := func(c *node.Config) { c.ChunkTimeout = time.Hour }
	n := e.start(tweak)
	acct := createAccount(t, n, 100)
	st := mustSubmit(t, n, acct, path, faultyName, 4)
	stops := node.DefaultMaxChunkCrashes + 1
	for i := 1; i <= stops; i++ {
		waitRunning(t, e, n, acct, st.ID, 1, i)
		n.Close()
		n = e.start(tweak)
	}
	waitRunning(t, e, n, acct, st.ID, 1, stops+1)
	e.faulty.setFault(nil)
	n.Close() // the blocked attempt ends; the next one runs for real
	n = e.start(tweak)

	st = waitEnded(t, n, acct, st.ID)
	if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Fatalf("status %s, want completed", st.Status.Label())
	}
	if c := st.Chunks[1]; c.Crashes != 0 || c.Lost != int32(stops+1) {
		t.Errorf("chunk 1: %d crashes and %d lost, want 0 and %d", c.Crashes, c.Lost, stops+1)
	}
	for _, ev := range jobEvents(t, n, st.ID) {
		if f := ev.GetChunkFailed(); f != nil && !strings.Contains(f.GetError(), "stopped while this chunk's attempt ran") {
			t.Errorf("lost attempt recorded as %q, want that its node stopped", f.GetError())
		}
	}
	checkCredits(t, n, st.ID, credits{Reserved: 16, Charged: 16})
}

// TestChunksInFlightAtACrashRunAlone: after a crash, each chunk that was
// running runs alone (nothing starts beside it), so that a second crash is
// blamed on the chunk that caused it only; the others then run as usual.
func TestChunksInFlightAtACrashRunAlone(t *testing.T) {
	path := corpusFile(t, pdf16Pages)
	started := make(chan int, 8)
	gates := map[int]chan struct{}{1: make(chan struct{}), 5: make(chan struct{})}
	e := newEnv(t, func(ctx context.Context, req extract.Request, call int) error {
		gate, ok := gates[req.FirstPage]
		if !ok {
			return nil
		}
		if call == 1 { // in flight at the crash
			<-ctx.Done()
			return ctx.Err()
		}
		started <- req.FirstPage
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	tweak := func(c *node.Config) { c.Concurrency = 2; c.ChunkTimeout = time.Hour }
	n := e.start(tweak)
	acct := createAccount(t, n, 100)
	st := mustSubmit(t, n, acct, path, faultyName, 4) // chunks 0 (page 1) and 1 (page 5) take both slots
	waitRunning(t, e, n, acct, st.ID, 0, 1)
	waitRunning(t, e, n, acct, st.ID, 1, 1)
	crash(t, e, n)
	n = e.start(tweak)

	for queued := int32(3); queued >= 2; queued-- {
		page := receive(t, "a chunk in flight at the crash to run again", started)
		waitFor(t, fmt.Sprintf("the chunk of page %d to run alone, %d waiting", page, queued), func() bool {
			s, err := n.Slots(t.Context())
			return err == nil && s.GetBusy() == 1 && s.GetQueued() == queued
		})
		close(gates[page])
	}
	st = waitEnded(t, n, acct, st.ID)
	if st.Status != messages.JobStatus_JOB_STATUS_COMPLETED {
		t.Fatalf("status %s, want completed", st.Status.Label())
	}
	for i, c := range st.Chunks {
		want := int32(0)
		if i < 2 {
			want = 1
		}
		if c.Crashes != want {
			t.Errorf("chunk %d: %d crashes, want %d", i, c.Crashes, want)
		}
	}
	checkOutputs(t, n, e, acct, st.ID, path)
	checkCredits(t, n, st.ID, credits{Reserved: 16, Charged: 16})
}
