package dispatch

import (
	"log/slog"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/actors/chunk"
	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/messages"
)

// Config sets up a Dispatcher.
type Config struct {
	Node       string
	Capacity   int
	Extractors extract.Registry
	// Source fetches the PDF of another node's job; nil when all jobs are local.
	Source chunk.Source
	// Forget is called when a job ends, to drop what this node kept of it.
	Forget func(job string)
	// Gauges, if set, receive the counts of queued and running chunks.
	Gauges *Gauges
	Log    *slog.Logger
}

type running struct {
	work     *messages.ChunkWork
	owner    *actor.PID
	reported bool
	isolated bool // runs alone (ChunkWork.isolated)
}

// Actor is the Dispatcher.
type Actor struct {
	cfg   Config
	queue *fairQueue
	// isolated is the work that must run alone (it was in flight when a node
	// crashed), in arrival order; it goes before the fair queue.
	isolated  []*messages.ChunkWork
	owners    map[string]*actor.PID // job -> JobActor
	ownerNode map[string]string     // job -> node that owns it
	running   map[string]*running   // ChunkActor id -> attempt
	// stopping is set when the dispatcher is being stopped: its chunk actors
	// are stopping with it, and no new one may start.
	stopping bool
}

// Props makes the Dispatcher. Its ChunkActors are stopped, never restarted,
// when they fail: the job decides whether to try again.
func Props(cfg Config) *actor.Props {
	stop := actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{cfg: cfg, queue: newFairQueue(), owners: map[string]*actor.PID{}, ownerNode: map[string]string{}, running: map[string]*running{}}
	}, actor.WithSupervisor(stop))
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	defer a.publish()
	switch m := ctx.Message().(type) {
	case *messages.DispatchChunk:
		w := m.GetWork()
		if ctx.Sender() != nil {
			a.owners[w.GetJobId()] = ctx.Sender()
		}
		a.ownerNode[w.GetJobId()] = w.GetOwnerNode()
		if w.GetIsolated() {
			a.isolated = append(a.isolated, w)
		} else {
			a.queue.push(w)
		}
		a.pump(ctx)
	case *messages.ChunkResult:
		r, ok := a.running[ctx.Sender().GetId()]
		if !ok || r.reported {
			if ctx.Sender() != nil {
				ctx.Stop(ctx.Sender())
			}
			return
		}
		r.reported = true
		m.OwnerIncarnation = r.work.GetOwnerIncarnation()
		ctx.Send(r.owner, m)
		ctx.Stop(ctx.Sender()) // its slot is freed when it has stopped (Terminated)
	case *actor.Terminated:
		r, ok := a.running[m.GetWho().GetId()]
		if !ok {
			return
		}
		delete(a.running, m.GetWho().GetId())
		if !r.reported && r.owner != nil {
			w := r.work
			ctx.Send(r.owner, &messages.ChunkResult{
				JobId: w.GetJobId(), Index: w.GetRange().GetIndex(), Attempt: w.GetAttempt(), Node: a.cfg.Node,
				Error: "the chunk's worker stopped before it reported a result", OwnerIncarnation: w.GetOwnerIncarnation(),
			})
		}
		a.pump(ctx)
	case *messages.ForgetJob:
		a.forget(ctx, m.GetJobId())
	case *messages.MemberLost:
		// The node that owns these jobs is gone (or restarted: it places its
		// unfinished chunks again itself): drop what was queued for it.
		for job, owner := range a.ownerNode {
			if owner == m.GetNode() {
				a.forget(ctx, job)
			}
		}
	case *actor.Stopping:
		a.stopping = true
	case *messages.DispatcherStats:
		ctx.Respond(&messages.DispatcherStatsReply{
			Capacity: int32(a.cfg.Capacity), Busy: int32(len(a.running)), Queued: int32(a.queued()),
		})
	}
}

// forget drops a job's queued work and stops its running chunks.
func (a *Actor) forget(ctx actor.Context, job string) {
	if a.cfg.Forget != nil {
		a.cfg.Forget(job)
	}
	a.queue.drop(job)
	a.isolated = slices.DeleteFunc(a.isolated, func(w *messages.ChunkWork) bool { return w.GetJobId() == job })
	delete(a.owners, job)
	delete(a.ownerNode, job)
	for id, r := range a.running {
		if r.work.GetJobId() == job {
			r.reported = true // the job no longer wants it
			r.owner = nil
			ctx.Stop(actor.NewPID(ctx.Self().GetAddress(), id))
		}
	}
}

// queued is how many chunks wait for a slot.
func (a *Actor) queued() int { return a.queue.len() + len(a.isolated) }

// pump starts queued work while slots are free. Isolated work goes first and
// runs alone: it waits until nothing runs, and nothing starts while it runs,
// so that a crash during it is blamed on it only.
func (a *Actor) pump(ctx actor.Context) {
	for !a.stopping && len(a.running) < a.cfg.Capacity && !a.runningIsolated() {
		var w *messages.ChunkWork
		switch {
		case len(a.isolated) > 0 && len(a.running) > 0:
			return // let what runs finish first
		case len(a.isolated) > 0:
			w, a.isolated = a.isolated[0], a.isolated[1:]
		default:
			w = a.queue.pop()
		}
		if w == nil {
			return
		}
		owner := a.owners[w.GetJobId()]
		x, err := a.cfg.Extractors.Get(w.GetExtractor())
		if err != nil {
			ctx.Send(owner, &messages.ChunkResult{
				JobId: w.GetJobId(), Index: w.GetRange().GetIndex(), Attempt: w.GetAttempt(), Node: a.cfg.Node,
				Error: err.Error(), Permanent: true, OwnerIncarnation: w.GetOwnerIncarnation(),
			})
			continue
		}
		pid := ctx.Spawn(chunk.Props(w, x, a.cfg.Node, a.cfg.Source, a.cfg.Log))
		a.running[pid.GetId()] = &running{work: w, owner: owner, isolated: w.GetIsolated()}
		a.cfg.Log.Debug("chunk started", "job", w.GetJobId(), "chunk", w.GetRange().GetIndex(), "attempt", w.GetAttempt(),
			"isolated", w.GetIsolated(), "running", len(a.running))
		ctx.Send(owner, &messages.ChunkRunning{
			JobId: w.GetJobId(), Index: w.GetRange().GetIndex(), Attempt: w.GetAttempt(), Node: a.cfg.Node,
			OwnerIncarnation: w.GetOwnerIncarnation(),
		})
	}
}

// runningIsolated reports whether a chunk that must run alone is running.
func (a *Actor) runningIsolated() bool {
	for _, r := range a.running {
		if r.isolated {
			return true
		}
	}
	return false
}
