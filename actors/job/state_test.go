package job

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// logBuilder writes a job's event log the way the JobActor does: each event
// stamped with the next sequence number and a later time.
type logBuilder struct {
	job string
	evs []*messages.JobEvent
}

func (l *logBuilder) add(ev *messages.JobEvent) *logBuilder {
	ev.JobId = l.job
	ev.Seq = int64(len(l.evs) + 1)
	ev.AtUnixMs = 1_700_000_000_000 + ev.Seq*1000
	l.evs = append(l.evs, ev)
	return l
}

func (l *logBuilder) created(pages, chunkPages int32) *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_Created{Created: &messages.JobCreated{
		JobId: l.job, AccountId: "acct", Pages: pages, ChunkPages: chunkPages, Extractor: "text",
		CreditsPerPage: 1, CreditsReserved: int64(pages), MaxAttempts: 3,
	}}})
}

func (l *logBuilder) planned(pages, chunkPages int) *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_Planned{Planned: &messages.ChunksPlanned{Chunks: Plan(pages, chunkPages)}}})
}

func (l *logBuilder) started(i, attempt int32) *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_ChunkStarted{ChunkStarted: &messages.ChunkStarted{Index: i, Attempt: attempt, Node: "n1"}}})
}

func (l *logBuilder) done(i, attempt int32) *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_ChunkDone{ChunkDone: &messages.ChunkDone{Index: i, Attempt: attempt, Node: "n2", DurationMs: int64(10 * (i + 1))}}})
}

func (l *logBuilder) failed(i, attempt int32, permanent bool) *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_ChunkFailed{ChunkFailed: &messages.ChunkFailed{Index: i, Attempt: attempt, Node: "n3", Error: "boom", Permanent: permanent}}})
}

func (l *logBuilder) cancel() *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_CancelRequested{CancelRequested: &messages.CancelRequested{Reason: "client"}}})
}

func (l *logBuilder) finished(status messages.JobStatus, charged, refunded int64) *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_Finished{Finished: &messages.JobFinished{Status: status, CreditsCharged: charged, CreditsRefunded: refunded}}})
}

// mixedLog is a job of 10 pages in 4 chunks (3,3,3,1 pages) that sees every
// kind of event: a retry, a permanent failure, and a partial outcome.
func mixedLog(job string) []*messages.JobEvent {
	l := &logBuilder{job: job}
	l.created(10, 3).planned(10, 3).
		started(0, 1).started(1, 1).
		failed(0, 1, false).
		done(1, 1).
		started(0, 2).started(2, 1).
		done(0, 2).
		failed(2, 1, true).
		started(3, 1).failed(3, 1, false).started(3, 2).done(3, 2).
		finished(messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED, 7, 3)
	return l.evs
}

var stateOpts = cmp.Options{protocmp.Transform()}

func openStore(tb testing.TB) *persistence.Store {
	tb.Helper()
	s, err := persistence.Open(tb.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// TestReplayEqualsTheStateBefore builds a state one event at a time, persists
// the events, reads them back and replays them: the replayed state equals the
// state built step by step, after every prefix of the log.
func TestReplayEqualsTheStateBefore(t *testing.T) {
	const job = "0190b2a4-0000-7000-8000-000000000001"
	evs := mixedLog(job)
	store := openStore(t)

	stepped := &State{}
	for i, ev := range evs {
		if err := stepped.Apply(ev); err != nil {
			t.Fatalf("Apply(event %d, %T): %v", ev.GetSeq(), ev.GetEvent(), err)
		}
		// Persist one event at a time, as the JobActor does.
		if err := store.AppendJobEvents(ev); err != nil {
			t.Fatal(err)
		}
		back, err := store.JobEvents(job)
		if err != nil {
			t.Fatal(err)
		}
		if len(back) != i+1 {
			t.Fatalf("after %d appends the log has %d events", i+1, len(back))
		}
		replayed, err := Replay(back)
		if err != nil {
			t.Fatalf("Replay of %d events: %v", i+1, err)
		}
		if diff := cmp.Diff(stepped, replayed, stateOpts); diff != "" {
			t.Fatalf("after event %d (%T): replay differs from the state built step by step (-want +got):\n%s",
				ev.GetSeq(), ev.GetEvent(), diff)
		}
	}

	back, err := store.JobEvents(job)
	if err != nil {
		t.Fatal(err)
	}
	first, err := Replay(back)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Replay(back)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second, stateOpts); diff != "" {
		t.Errorf("replaying twice gives different states (-first +second):\n%s", diff)
	}

	// And the state is the one this log describes, not just a consistent one.
	at := func(seq int64) time.Time { return time.UnixMilli(1_700_000_000_000 + seq*1000) }
	r := func(i, first, last int32) *messages.ChunkRange {
		return &messages.ChunkRange{Index: i, FirstPage: first, LastPage: last}
	}
	want := &State{
		ID:        job,
		Created:   evs[0].GetCreated(),
		CreatedAt: at(1),
		UpdatedAt: at(int64(len(evs))),
		Status:    messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED,
		Chunks: []*Chunk{
			{Range: r(0, 1, 3), Status: ChunkDone, Attempts: 2, MaxAttempt: 2, Failures: 1, Node: "n2", DurationMs: 10},
			{Range: r(1, 4, 6), Status: ChunkDone, Attempts: 1, MaxAttempt: 1, Node: "n2", DurationMs: 20},
			{Range: r(2, 7, 9), Status: ChunkFailed, Attempts: 1, MaxAttempt: 1, Failures: 1, Node: "n3", Error: "boom"},
			{Range: r(3, 10, 10), Status: ChunkDone, Attempts: 2, MaxAttempt: 2, Failures: 1, Node: "n2", DurationMs: 40},
		},
		Finished: evs[len(evs)-1].GetFinished(),
		LastSeq:  int64(len(evs)),
	}
	if diff := cmp.Diff(want, first, stateOpts); diff != "" {
		t.Errorf("replayed state (-want +got):\n%s", diff)
	}
}

func TestStateSummaries(t *testing.T) {
	type summary struct {
		Status    messages.JobStatus
		Counts    Counts
		Progress  float64
		DonePages int64
		AllEnded  bool
		Outcome   messages.JobStatus
	}
	const (
		queued     = messages.JobStatus_JOB_STATUS_QUEUED
		running    = messages.JobStatus_JOB_STATUS_RUNNING
		completed  = messages.JobStatus_JOB_STATUS_COMPLETED
		partial    = messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED
		failed     = messages.JobStatus_JOB_STATUS_FAILED
		cancelling = messages.JobStatus_JOB_STATUS_CANCELLING
		cancelled  = messages.JobStatus_JOB_STATUS_CANCELLED
	)
	// Every job: 10 pages in chunks of 3 → 4 chunks of 3,3,3,1 pages.
	base := func() *logBuilder { return (&logBuilder{job: "j"}).created(10, 3).planned(10, 3) }
	tests := []struct {
		name string
		log  *logBuilder
		want summary
	}{
		{"queued", base(), summary{
			Status: queued, Counts: Counts{Total: 4, Pending: 4}, Progress: 0, Outcome: failed,
		}},
		{"running", base().started(0, 1).started(3, 1).done(3, 1), summary{
			Status: running, Counts: Counts{Total: 4, Done: 1, Running: 1, Pending: 2}, Progress: 0.1, DonePages: 1, Outcome: partial,
		}},
		{"a transient failure is pending again", base().started(0, 1).failed(0, 1, false), summary{
			Status: running, Counts: Counts{Total: 4, Pending: 4}, Progress: 0, Outcome: failed,
		}},
		{"all done", base().started(0, 1).done(0, 1).started(1, 1).done(1, 1).started(2, 1).done(2, 1).started(3, 1).done(3, 1).
			finished(completed, 10, 0), summary{
			Status: completed, Counts: Counts{Total: 4, Done: 4}, Progress: 1, DonePages: 10, AllEnded: true, Outcome: completed,
		}},
		{"all failed", base().started(0, 1).failed(0, 1, true).started(1, 1).failed(1, 1, true).
			started(2, 1).failed(2, 1, true).started(3, 1).failed(3, 1, true).finished(failed, 0, 10), summary{
			Status: failed, Counts: Counts{Total: 4, Failed: 4}, Progress: 1, AllEnded: true, Outcome: failed,
		}},
		{"mixed", base().started(0, 1).done(0, 1).started(1, 1).failed(1, 1, true).
			started(2, 1).done(2, 1).started(3, 1).failed(3, 1, true).finished(partial, 6, 4), summary{
			Status: partial, Counts: Counts{Total: 4, Done: 2, Failed: 2}, Progress: 1, DonePages: 6, AllEnded: true, Outcome: partial,
		}},
		{"all ended, not yet finished", base().started(0, 1).done(0, 1).started(1, 1).failed(1, 1, true).
			started(2, 1).done(2, 1).started(3, 1).done(3, 1), summary{
			Status: running, Counts: Counts{Total: 4, Done: 3, Failed: 1}, Progress: 1, DonePages: 7, AllEnded: true, Outcome: partial,
		}},
		{"cancelling", base().started(0, 1).done(0, 1).started(1, 1).cancel(), summary{
			Status: cancelling, Counts: Counts{Total: 4, Done: 1, Running: 1, Pending: 2}, Progress: 0.3, DonePages: 3, Outcome: partial,
		}},
		{"cancelled", base().started(0, 1).done(0, 1).started(3, 1).failed(3, 1, true).started(1, 1).cancel().
			finished(cancelled, 3, 7), summary{
			// A cancelled job's progress is what was done, not 1; the chunks
			// that had not ended (one running, one pending) are cancelled.
			Status: cancelled, Counts: Counts{Total: 4, Done: 1, Failed: 1, Cancelled: 2}, Progress: 0.4, DonePages: 3, AllEnded: true, Outcome: partial,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Replay(tc.log.evs)
			if err != nil {
				t.Fatal(err)
			}
			got := summary{
				Status: st.Status, Counts: st.Counts(), Progress: st.Progress(), DonePages: st.DonePages(),
				AllEnded: st.AllEnded(), Outcome: st.Outcome(),
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestChunkPages(t *testing.T) {
	st, err := Replay((&logBuilder{job: "j"}).created(311, 100).planned(311, 100).evs)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, c := range st.Chunks {
		got = append(got, c.Pages())
	}
	if diff := cmp.Diff([]int64{100, 100, 100, 11}, got); diff != "" {
		t.Errorf("chunk pages (-want +got):\n%s", diff)
	}
}

func TestApplyRejectsBrokenLogs(t *testing.T) {
	good := func() *logBuilder { return (&logBuilder{job: "j"}).created(4, 2).planned(4, 2).started(0, 1) }
	tests := []struct {
		name string
		next func(last int64) *messages.JobEvent
	}{
		{"gap", func(last int64) *messages.JobEvent { return seqOf(doneEv(0), last+2) }},
		{"repeat", func(last int64) *messages.JobEvent { return seqOf(doneEv(0), last) }},
		{"backwards", func(last int64) *messages.JobEvent { return seqOf(doneEv(0), last-2) }},
		{"zero", func(int64) *messages.JobEvent { return seqOf(doneEv(0), 0) }},
		{"chunk out of range", func(last int64) *messages.JobEvent { return seqOf(doneEv(2), last+1) }},
		{"negative chunk", func(last int64) *messages.JobEvent { return seqOf(doneEv(-1), last+1) }},
		{"no event", func(last int64) *messages.JobEvent { return &messages.JobEvent{JobId: "j", Seq: last + 1} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Replay(good().evs)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := Replay(good().evs)
			ev := tc.next(st.LastSeq)
			if err := st.Apply(ev); !errors.Is(err, ErrBadLog) {
				t.Fatalf("Apply(seq %d after %d) error = %v, want ErrBadLog", ev.GetSeq(), before.LastSeq, err)
			}
			if _, err := Replay(append(good().evs, ev)); !errors.Is(err, ErrBadLog) {
				t.Errorf("Replay of the broken log error = %v, want ErrBadLog", err)
			}
		})
	}
	// The sequence is checked even when an out-of-order event is otherwise valid.
	t.Run("swapped", func(t *testing.T) {
		evs := good().done(0, 1).started(1, 1).evs
		n := len(evs)
		evs[n-1], evs[n-2] = evs[n-2], evs[n-1]
		if _, err := Replay(evs); !errors.Is(err, ErrBadLog) {
			t.Errorf("Replay of swapped events error = %v, want ErrBadLog", err)
		}
	})
}

func TestReplayNeedsJobCreatedFirst(t *testing.T) {
	l := (&logBuilder{job: "j"}).created(2, 1).planned(2, 1)
	if _, err := Replay(nil); !errors.Is(err, ErrBadLog) {
		t.Errorf("Replay(nil) error = %v, want ErrBadLog", err)
	}
	if _, err := Replay(l.evs[1:]); !errors.Is(err, ErrBadLog) {
		t.Errorf("Replay without JobCreated error = %v, want ErrBadLog", err)
	}
}

func doneEv(i int32) *messages.JobEvent {
	return &messages.JobEvent{JobId: "j", Event: &messages.JobEvent_ChunkDone{ChunkDone: &messages.ChunkDone{Index: i, Attempt: 1}}}
}

func seqOf(ev *messages.JobEvent, seq int64) *messages.JobEvent {
	ev.Seq = seq
	return ev
}

func (l *logBuilder) lost(i, attempt int32, crashed, permanent bool) *logBuilder {
	return l.add(&messages.JobEvent{Event: &messages.JobEvent_ChunkFailed{ChunkFailed: &messages.ChunkFailed{
		Index: i, Attempt: attempt, Node: "n1", Error: "node n1 crashed", Lost: true, Crashed: crashed, Permanent: permanent,
	}}})
}

// TestReplayCountsCrashes: attempts lost with a crash of their node are
// counted apart from other lost attempts, durably (through the store), and
// a running chunk remembers when its attempt started.
func TestReplayCountsCrashes(t *testing.T) {
	const job = "0190b2a4-0000-7000-8000-000000000002"
	at := func(seq int64) time.Time { return time.UnixMilli(1_700_000_000_000 + seq*1000) }
	type chunk struct {
		Status                          ChunkStatus
		Attempts, Lost, Crashes, Failed int32
		StartedAt                       time.Time
	}
	for _, tc := range []struct {
		name string
		log  func(l *logBuilder)
		want chunk
	}{
		{"running", func(l *logBuilder) { l.started(0, 1) },
			chunk{Status: ChunkRunning, Attempts: 1, StartedAt: at(3)}},
		{"lost at a clean stop", func(l *logBuilder) { l.started(0, 1).lost(0, 1, false, false) },
			chunk{Status: ChunkPending, Attempts: 1, Lost: 1, Failed: 1}},
		{"crashed once", func(l *logBuilder) { l.started(0, 1).lost(0, 1, true, false) },
			chunk{Status: ChunkPending, Attempts: 1, Lost: 1, Crashes: 1, Failed: 1}},
		{"crashed, running again", func(l *logBuilder) { l.started(0, 1).lost(0, 1, true, false).started(0, 2) },
			chunk{Status: ChunkRunning, Attempts: 2, Lost: 1, Crashes: 1, Failed: 1, StartedAt: at(5)}},
		{"crashed twice: failed for good", func(l *logBuilder) {
			l.started(0, 1).lost(0, 1, true, false).started(0, 2).lost(0, 2, true, true)
		}, chunk{Status: ChunkFailed, Attempts: 2, Lost: 2, Crashes: 2, Failed: 2}},
		{"a crash, a clean stop, then done", func(l *logBuilder) {
			l.started(0, 1).lost(0, 1, true, false).started(0, 2).lost(0, 2, false, false).started(0, 3).done(0, 3)
		}, chunk{Status: ChunkDone, Attempts: 3, Lost: 2, Crashes: 1, Failed: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := (&logBuilder{job: job}).created(3, 3).planned(3, 3)
			tc.log(l)
			store := openStore(t)
			if err := store.AppendJobEvents(l.evs...); err != nil {
				t.Fatal(err)
			}
			back, err := store.JobEvents(job)
			if err != nil {
				t.Fatal(err)
			}
			st, err := Replay(back)
			if err != nil {
				t.Fatal(err)
			}
			c := st.Chunks[0]
			got := chunk{Status: c.Status, Attempts: c.Attempts, Lost: c.Lost, Crashes: c.Crashes, Failed: c.Failures, StartedAt: c.StartedAt}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("chunk 0 (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBootCrashed: only an attempt that ran on this node, and had started
// before this process did, is blamed on the crash of the process before.
func TestBootCrashed(t *testing.T) {
	boot := time.UnixMilli(1_700_000_100_000)
	running := func(node string, started time.Time) *Chunk {
		return &Chunk{Status: ChunkRunning, Node: node, StartedAt: started}
	}
	for _, tc := range []struct {
		name string
		boot Boot
		c    *Chunk
		want bool
	}{
		{"ran here when it crashed", Boot{At: boot, AfterCrash: true}, running("n1", boot.Add(-time.Second)), true},
		{"same millisecond as the start", Boot{At: boot, AfterCrash: true}, running("n1", boot), true},
		{"clean stop before", Boot{At: boot}, running("n1", boot.Add(-time.Second)), false},
		{"ran on another node", Boot{At: boot, AfterCrash: true}, running("n2", boot.Add(-time.Second)), false},
		{"started in this process", Boot{At: boot, AfterCrash: true}, running("n1", boot.Add(time.Second)), false},
		{"not running", Boot{At: boot, AfterCrash: true}, &Chunk{Status: ChunkPending, Node: "n1"}, false},
	} {
		if got := tc.boot.Crashed(tc.c, "n1"); got != tc.want {
			t.Errorf("%s: Crashed = %v, want %v", tc.name, got, tc.want)
		}
	}
}
