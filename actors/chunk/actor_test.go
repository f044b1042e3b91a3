package chunk_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/actors/chunk"
	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/messages"
)

// funcExtractor is a fault-injecting stand-in for the Extractor seam.
type funcExtractor func(ctx context.Context, req extract.Request) (extract.Result, error)

var _ extract.Extractor = funcExtractor(nil)

func (f funcExtractor) Name() string { return "func" }
func (f funcExtractor) Extract(ctx context.Context, req extract.Request) (extract.Result, error) {
	return f(ctx, req)
}

// parent spawns one ChunkActor and hands its first result to got.
type parent struct {
	props *actor.Props
	got   chan *messages.ChunkResult
}

func (p *parent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Spawn(p.props)
	case *messages.ChunkResult:
		p.got <- m
		ctx.Stop(ctx.Sender())
	}
}

func runChunk(tb testing.TB, x extract.Extractor, timeout time.Duration) *messages.ChunkResult {
	tb.Helper()
	sys := actor.NewActorSystem()
	tb.Cleanup(sys.Shutdown)
	work := &messages.ChunkWork{JobId: "j", Range: &messages.ChunkRange{Index: 2, FirstPage: 61, LastPage: 90}, Attempt: 1, TimeoutMs: timeout.Milliseconds()}
	p := &parent{props: chunk.Props(work, x, "n1", nil, slog.Default()), got: make(chan *messages.ChunkResult, 1)}
	sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
	select {
	case r := <-p.got:
		return r
	case <-time.After(timeout + 30*time.Second):
		tb.Fatal("no chunk result")
	}
	return nil
}

func TestChunkResults(t *testing.T) {
	tests := []struct {
		name          string
		x             funcExtractor
		ok, permanent bool
		errHas        string
	}{
		{"ok", func(ctx context.Context, req extract.Request) (extract.Result, error) {
			if req.FirstPage != 61 || req.LastPage != 90 {
				return extract.Result{}, errors.New("wrong range")
			}
			return extract.Result{Output: []byte(`{"x":1}`)}, nil
		}, true, false, ""},
		{"transient error", func(context.Context, extract.Request) (extract.Result, error) {
			return extract.Result{}, errors.New("connection reset")
		}, false, false, "connection reset"},
		{"permanent error", func(context.Context, extract.Request) (extract.Result, error) {
			return extract.Result{}, extract.Permanent(errors.New("blocked for safety"))
		}, false, true, "blocked for safety"},
		{"panic is a retryable failure", func(context.Context, extract.Request) (extract.Result, error) {
			panic("boom")
		}, false, false, "crashed on pages 61-90: boom"},
		{"deadline", func(ctx context.Context, _ extract.Request) (extract.Result, error) {
			<-ctx.Done()
			return extract.Result{}, ctx.Err()
		}, false, false, "took longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runChunk(t, tc.x, 300*time.Millisecond)
			if r.GetOk() != tc.ok || r.GetPermanent() != tc.permanent || !strings.Contains(r.GetError(), tc.errHas) {
				t.Fatalf("got ok=%v permanent=%v error=%q; want ok=%v permanent=%v error containing %q",
					r.GetOk(), r.GetPermanent(), r.GetError(), tc.ok, tc.permanent, tc.errHas)
			}
			if r.GetJobId() != "j" || r.GetIndex() != 2 || r.GetAttempt() != 1 || r.GetNode() != "n1" {
				t.Fatalf("result not labelled with its work: %v", r)
			}
		})
	}
}

// An extractor that ignores its context still gives up its slot: the
// watchdog fails the attempt shortly after the deadline.
func TestChunkWatchdog(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	r := runChunk(t, funcExtractor(func(context.Context, extract.Request) (extract.Result, error) {
		<-release
		return extract.Result{}, nil
	}), 100*time.Millisecond)
	if r.GetOk() || !strings.Contains(r.GetError(), "did not stop") {
		t.Fatalf("got %v, want a watchdog failure", r)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("watchdog took %s", el)
	}
}
