package dispatch

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/messages"
)

// gatedExtractor is a fault-injecting fake of the Extractor seam: each
// chunk (by job id) runs until the test opens its gate.
type gatedExtractor struct {
	mu    sync.Mutex
	gates map[string]chan struct{}
}

var _ extract.Extractor = (*gatedExtractor)(nil)

func (x *gatedExtractor) Name() string { return "gated" }

func (x *gatedExtractor) gate(job string) chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	g, ok := x.gates[job]
	if !ok {
		g = make(chan struct{})
		x.gates[job] = g
	}
	return g
}

func (x *gatedExtractor) Extract(ctx context.Context, req extract.Request) (extract.Result, error) {
	select {
	case <-x.gate(req.JobID):
		return extract.Result{Output: json.RawMessage(`{}`)}, nil
	case <-ctx.Done():
		return extract.Result{}, ctx.Err()
	}
}

// TestIsolatedWorkRunsAlone: work marked isolated waits until nothing runs,
// nothing starts beside it, and it goes before work that came earlier.
func TestIsolatedWorkRunsAlone(t *testing.T) {
	x := &gatedExtractor{gates: map[string]chan struct{}{}}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(system.Shutdown)
	started := make(chan string, 16)
	ended := make(chan string, 16)
	owner := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.ChunkRunning:
			started <- m.GetJobId()
		case *messages.ChunkResult:
			ended <- m.GetJobId()
		}
	}))
	d := system.Root.Spawn(Props(Config{
		Node: "n1", Capacity: 2, Extractors: extract.NewRegistry(x), Log: slog.New(slog.DiscardHandler),
	}))
	dispatch := func(job string, isolated bool) {
		system.Root.RequestWithCustomSender(d, &messages.DispatchChunk{Work: &messages.ChunkWork{
			JobId: job, AccountId: "acct-" + job, Range: &messages.ChunkRange{FirstPage: 1, LastPage: 1},
			Attempt: 1, Extractor: "gated", OwnerNode: "n1", Isolated: isolated,
		}}, owner)
	}
	wait := func(ch chan string, what string) string {
		t.Helper()
		select {
		case job := <-ch:
			return job
		case <-time.After(30 * time.Second):
			t.Fatalf("gave up waiting for %s", what)
		}
		return ""
	}
	// slots polls the dispatcher until it reports busy and queued.
	slots := func(busy, queued int32) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			res, err := system.Root.RequestFuture(d, &messages.DispatcherStats{}, 5*time.Second).Result()
			if err != nil {
				t.Fatal(err)
			}
			st := res.(*messages.DispatcherStatsReply)
			if st.GetBusy() == busy && st.GetQueued() == queued {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("dispatcher: %d busy, %d queued; want %d, %d", st.GetBusy(), st.GetQueued(), busy, queued)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	dispatch("a", false)
	dispatch("b", false)
	for range 2 {
		wait(started, "a and b to start")
	}
	dispatch("c", false)
	dispatch("isolated", true)
	slots(2, 2)

	close(x.gate("a"))
	if got := wait(ended, "a to end"); got != "a" {
		t.Fatalf("%s ended, want a", got)
	}
	slots(1, 2) // a slot is free, but the isolated work waits for b, and c waits behind it

	close(x.gate("b"))
	wait(ended, "b to end")
	if got := wait(started, "the isolated work to start"); got != "isolated" {
		t.Fatalf("%s started after a and b, want the isolated work first", got)
	}
	slots(1, 1) // c waits though a slot is free: nothing runs beside isolated work

	close(x.gate("isolated"))
	wait(ended, "the isolated work to end")
	if got := wait(started, "c to start"); got != "c" {
		t.Fatalf("%s started, want c", got)
	}
	close(x.gate("c"))
	wait(ended, "c to end")
	slots(0, 0)
}
