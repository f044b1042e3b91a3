package chunk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/messages"
)

// DefaultTimeout bounds an attempt whose work does not say otherwise.
const DefaultTimeout = 2 * time.Minute

// watchdogGrace is how long past its deadline an attempt may take to stop.
const watchdogGrace = 5 * time.Second

// Actor is the ChunkActor.
type Actor struct {
	work      *messages.ChunkWork
	extractor extract.Extractor
	node      string
	log       *slog.Logger
	source    Source
	cancel    context.CancelFunc
	watchdog  *time.Timer
	reported  bool
}

// Source gives the local path of the PDF of work that belongs to a job of
// another node (fetching it from that node the first time).
type Source func(ctx context.Context, work *messages.ChunkWork) (string, error)

// Props makes a ChunkActor for one attempt on node. source may be nil when
// every job is local.
func Props(work *messages.ChunkWork, x extract.Extractor, node string, source Source, log *slog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{work: work, extractor: x, node: node, source: source, log: log}
	})
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		timeout := time.Duration(a.work.GetTimeoutMs()) * time.Millisecond
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		runCtx, cancel := context.WithTimeout(context.Background(), timeout)
		a.cancel = cancel
		self, root := ctx.Self(), ctx.ActorSystem().Root
		go func() {
			res := a.run(runCtx, timeout)
			root.Send(self, res)
		}()
		// An extractor that ignores its context must not hold the slot for
		// ever: past the deadline and a grace period the attempt is failed
		// (its goroutine is abandoned; its late result is ignored).
		w := a.work
		a.watchdog = time.AfterFunc(timeout+watchdogGrace, func() {
			root.Send(self, &messages.ChunkResult{
				JobId: w.GetJobId(), Index: w.GetRange().GetIndex(), Attempt: w.GetAttempt(), Node: a.node,
				Error:      fmt.Sprintf("pages %d-%d took longer than %s and the extractor did not stop", w.GetRange().GetFirstPage(), w.GetRange().GetLastPage(), timeout),
				DurationMs: (timeout + watchdogGrace).Milliseconds(),
			})
		})
	case *messages.ChunkResult:
		// The parent stops this actor once it has the result: were it to stop
		// itself, the parent could see it terminated before the result arrived.
		if !a.reported {
			a.reported = true
			ctx.Request(ctx.Parent(), m) // Request, so the parent knows which child reports
		}
	case *actor.Stopping:
		if a.cancel != nil {
			a.cancel()
		}
		if a.watchdog != nil {
			a.watchdog.Stop()
		}
	}
}

// run performs the attempt; it never panics.
func (a *Actor) run(ctx context.Context, timeout time.Duration) (res *messages.ChunkResult) {
	w := a.work
	start := time.Now()
	res = &messages.ChunkResult{JobId: w.GetJobId(), Index: w.GetRange().GetIndex(), Attempt: w.GetAttempt(), Node: a.node}
	defer func() {
		res.DurationMs = time.Since(start).Milliseconds()
		if r := recover(); r != nil {
			a.log.Error("extractor panicked", "job", w.GetJobId(), "chunk", w.GetRange().GetIndex(),
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res.Ok, res.Output = false, nil
			res.Error = fmt.Sprintf("the %s extractor crashed on pages %d-%d: %v", a.extractor.Name(),
				w.GetRange().GetFirstPage(), w.GetRange().GetLastPage(), r)
			res.Permanent = false
		}
	}()
	path := w.GetPdfPath()
	if owner := w.GetOwnerNode(); owner != "" && owner != a.node && a.source != nil {
		p, err := a.source(ctx, w)
		if err != nil {
			res.Error = fmt.Sprintf("could not fetch the PDF from node %s: %v", owner, err)
			if ctx.Err() != nil {
				res.Error = "cancelled"
			}
			return res
		}
		path = p
	}
	out, err := a.extractor.Extract(ctx, extract.Request{
		JobID: w.GetJobId(), PDFPath: path,
		FirstPage: int(w.GetRange().GetFirstPage()), LastPage: int(w.GetRange().GetLastPage()),
		Prompt: w.GetPrompt(), Schema: w.GetSchema(), Model: w.GetModel(),
	})
	// Usage counts whatever the attempt's outcome: a failed call may still cost tokens.
	if u := out.Usage; u != (extract.Usage{}) {
		res.Usage = &messages.TokenUsage{PromptTokens: u.PromptTokens, OutputTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
	}
	switch {
	case err == nil && ctx.Err() == nil:
		res.Ok, res.Output = true, out.Output
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.Error = fmt.Sprintf("pages %d-%d took longer than %s", w.GetRange().GetFirstPage(), w.GetRange().GetLastPage(), timeout)
	case err == nil:
		res.Error = "cancelled"
	default:
		res.Error = err.Error()
		res.Permanent = extract.IsPermanent(err)
		if after, ok := extract.RetryAfter(err); ok {
			res.RateLimited, res.RetryAfterMs = true, after.Milliseconds()
		}
	}
	return res
}
