package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/internal/fault"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/metrics"
	"github.com/quirehq/quire/persistence"
)

// Config is what every JobActor of a node shares.
type Config struct {
	Node   string
	Store  *persistence.Store
	Ledger *ledger.Client
	// RemoteLedger is true when the ledger lives on another node: its store
	// does not hold this job's events, so the job records its own ending
	// after the ledger has settled (settling again is a no-op).
	RemoteLedger bool
	Dispatcher   *actor.PID
	// Placer chooses the node of each attempt; nil places all on Dispatcher.
	Placer Placer
	// SourceURL is where workers on other nodes fetch a job's PDF:
	// SourceURL + "/" + job id.
	SourceURL    string
	ChunkTimeout time.Duration
	// RetryBase is the first backoff after a transient failure; it doubles
	// with each failure of the same chunk, up to RetryMax, with jitter.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxCrashes: a chunk whose attempts were in flight at this many crashes
	// of the node running them fails for good (0: DefaultMaxCrashes).
	MaxCrashes int32
	// Boot is this node process's start, to tell attempts that a crash
	// interrupted from those a clean shutdown did.
	Boot Boot
	Log  *slog.Logger
	Now  func() time.Time
}

// DefaultMaxCrashes is how many crashes of its node an attempt of one chunk
// may be in flight at before the chunk fails for good.
const DefaultMaxCrashes = 2

// Boot is a node process's start: when it started, and whether the process
// before it on the same store ended without a clean shutdown (killed, out of
// memory, a fatal error). An attempt the log shows started on this node
// before At, with no outcome, was in flight when that process ended: a crash
// if AfterCrash, an interruption otherwise.
type Boot struct {
	At         time.Time
	AfterCrash bool
}

// Crashed reports whether the attempt of chunk c that the log shows running
// was in flight on node when the process before this one crashed.
func (b Boot) Crashed(c *Chunk, node string) bool {
	return b.AfterCrash && c.Status == ChunkRunning && c.Node == node && !c.StartedAt.After(b.At)
}

// Actor is the JobActor: it owns one job while the job runs.
type Actor struct {
	cfg      Config
	id       string
	st       *State
	inFlight map[int32]int32  // chunk -> attempt handed to a dispatcher
	placedOn map[int32]string // chunk -> node of its attempt in flight
	// startedAt is when the attempt in flight started running on its node
	// (ChunkRunning): from then on its own deadline applies, not the one
	// set when it was placed.
	startedAt map[int32]time.Time
	last      map[int32]int32 // chunk -> highest attempt number handed out
	// incarnation identifies this life of the actor: answers to attempts an
	// earlier life made (before a restart of the actor or of the node) are stale.
	incarnation string
	finishing   bool
}

// Props makes the JobActor of job id. It loads the job from its event log
// when it starts (and again if it is restarted after a failure).
func Props(cfg Config, id string) *actor.Props {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Placer == nil {
		cfg.Placer = LocalPlacer{Node: cfg.Node, Dispatcher: cfg.Dispatcher}
	}
	if cfg.MaxCrashes <= 0 {
		cfg.MaxCrashes = DefaultMaxCrashes
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{cfg: cfg, id: id}
	})
}

// Name is the actor name of a job's JobActor.
func Name(id string) string { return "job-" + id }

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *messages.ChunkRunning:
		a.running(ctx, m)
	case *messages.ChunkResult:
		a.result(ctx, m)
	case *messages.RetryChunk:
		if c, err := a.st.chunk(m.GetIndex()); err == nil && c.Status == ChunkPending && !a.st.CancelRequested {
			a.dispatch(ctx, c)
		}
	case *messages.MemberLost:
		a.memberLost(ctx, m.GetNode(), m.GetCrashed())
	case *messages.AttemptDeadline:
		if c := a.current(m.GetIndex(), m.GetAttempt(), m.GetOwnerIncarnation()); c != nil {
			if t, ok := a.startedAt[m.GetIndex()]; ok && time.Since(t) < a.runningDeadline() {
				return // the placement's deadline; the attempt runs and has its own
			}
			node := a.placedOn[m.GetIndex()]
			a.lose(ctx, c, m.GetAttempt(), fmt.Sprintf("node %s did not answer within %s", node, a.deadline()), false)
		}
	case *messages.RetryFinish:
		if !a.st.Status.Terminal() {
			a.finish(ctx, m.GetStatus(), m.GetError())
		}
	case *messages.CancelJob:
		ctx.Respond(a.cancel(ctx, m))
	}
}

func (a *Actor) start(ctx actor.Context) {
	a.inFlight = map[int32]int32{}
	a.placedOn = map[int32]string{}
	a.startedAt = map[int32]time.Time{}
	a.last = map[int32]int32{}
	a.incarnation = uuid.NewString()
	evs, err := a.cfg.Store.JobEvents(a.id)
	if err != nil {
		panic(fmt.Errorf("job %s: load events: %w", a.id, err))
	}
	if a.st, err = Replay(evs); err != nil {
		panic(fmt.Errorf("job %s: %w", a.id, err))
	}
	switch {
	case a.st.Status.Terminal():
		a.done(ctx)
		return
	case a.st.CancelRequested:
		a.finish(ctx, messages.JobStatus_JOB_STATUS_CANCELLED, "")
		return
	}
	a.closeInterrupted()
	for _, c := range a.st.Chunks {
		if !c.Terminal() {
			a.dispatch(ctx, c)
		}
	}
	a.maybeFinish(ctx)
}

// closeInterrupted records the outcome of every attempt the log shows
// started but not ended: an earlier life of this actor (or of the node) made
// it and nobody waits for it any more. One that ran on this node when the
// node crashed counts towards the chunk's crash limit; one that a clean
// shutdown stopped, or that ran on another node (its worker answers a dead
// incarnation), is only lost.
func (a *Actor) closeInterrupted() {
	boot := a.cfg.Boot
	for _, c := range a.st.Chunks {
		if c.Status != ChunkRunning {
			continue
		}
		crashed := boot.Crashed(c, a.cfg.Node)
		why := fmt.Sprintf("node %s stopped while this chunk's attempt ran", a.cfg.Node)
		switch {
		case crashed:
			why = fmt.Sprintf("node %s crashed while this chunk's attempt ran on it", a.cfg.Node)
		case c.Node != a.cfg.Node:
			why = fmt.Sprintf("node %s, which owns the job, restarted while this chunk's attempt ran on node %s", a.cfg.Node, c.Node)
		}
		a.recordLost(c, c.MaxAttempt, c.Node, why, crashed)
	}
}

// dispatch hands the next attempt of chunk c to the dispatcher.
func (a *Actor) dispatch(ctx actor.Context, c *Chunk) {
	// Attempt numbers are never reused, not even for an attempt that was
	// queued on a lost node and never started, nor across restarts.
	attempt := max(c.MaxAttempt, a.last[c.Range.GetIndex()]) + 1
	a.last[c.Range.GetIndex()] = attempt
	place, ok := a.cfg.Placer.Pick()
	if !ok {
		// No node can take work now (all draining): try again shortly.
		a.retryLater(ctx, c, time.Second)
		return
	}
	index := c.Range.GetIndex()
	a.inFlight[index] = attempt
	a.placedOn[index] = place.Node
	delete(a.startedAt, index) // a new attempt has not started yet
	if c.Failures > 0 {        // an attempt after a retried, lost or rate-limited one
		metrics.ChunkRetried()
	}
	cr := a.st.Created
	if c.Crashes > 0 {
		a.cfg.Log.Info("chunk runs alone: it was in flight at a crash", "job", a.id, "chunk", index, "attempt", attempt, "node", place.Node, "crashes", c.Crashes)
	}
	ctx.Request(place.Dispatcher, &messages.DispatchChunk{Work: &messages.ChunkWork{
		JobId: a.id, AccountId: cr.GetAccountId(), Range: c.Range, Attempt: attempt,
		PdfPath: a.cfg.Store.BlobPath(a.id), Extractor: cr.GetExtractor(),
		Prompt: cr.GetPrompt(), Schema: cr.GetSchema(), Model: cr.GetModel(), TimeoutMs: a.cfg.ChunkTimeout.Milliseconds(),
		OwnerNode: a.cfg.Node, SourceUrl: a.cfg.SourceURL + "/" + a.id, FileSha256: cr.GetFileSha256(),
		OwnerIncarnation: a.incarnation, Isolated: c.Crashes > 0,
	}})
	// A node that stops answering (stopped, cut off) would hold the chunk for
	// ever: past a deadline the attempt is given up and placed again. The
	// queue wait on a busy node counts here, so this deadline is generous; a
	// tighter one starts when the chunk starts (running). This node's own
	// dispatcher cannot go silent without this actor going too.
	if place.Node != a.cfg.Node {
		a.remind(ctx, index, attempt, a.deadline())
	}
}

func (a *Actor) remind(ctx actor.Context, index, attempt int32, after time.Duration) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	inc := a.incarnation
	time.AfterFunc(after, func() {
		root.Send(self, &messages.AttemptDeadline{Index: index, Attempt: attempt, OwnerIncarnation: inc})
	})
}

// deadline is how long an attempt may take, queueing on its node included,
// before it is given up.
func (a *Actor) deadline() time.Duration {
	return 3*a.cfg.ChunkTimeout + 15*time.Second
}

// runningDeadline is how long an attempt may run on another node, once it
// has started there, before it is given up: its own deadline and a margin
// for its watchdog and the answer.
func (a *Actor) runningDeadline() time.Duration {
	return a.cfg.ChunkTimeout + 15*time.Second
}

// settled marks chunk index as no longer in flight on its node.
func (a *Actor) settled(index int32) {
	if node, ok := a.placedOn[index]; ok {
		a.cfg.Placer.Release(node)
		delete(a.placedOn, index)
	}
	delete(a.inFlight, index)
	delete(a.startedAt, index)
}

// memberLost gives up every attempt in flight on node and places it again.
// When the node crashed (declared dead or seen restarted, not a clean leave),
// the attempts that had started there count towards their chunk's crash limit.
func (a *Actor) memberLost(ctx actor.Context, node string, crashed bool) {
	for index, on := range a.placedOn {
		if on != node {
			continue
		}
		if c := a.current(index, a.inFlight[index], a.incarnation); c != nil {
			started := c.Status == ChunkRunning && c.Node == node
			why := fmt.Sprintf("node %s was lost with this chunk's attempt", node)
			if crashed && started {
				why = fmt.Sprintf("node %s crashed while this chunk's attempt ran on it", node)
			}
			a.lose(ctx, c, a.inFlight[index], why, crashed && started)
		}
	}
}

// lose records that an attempt was lost with its node (it does not count
// against the attempt limit) and places the chunk again at once, unless the
// chunk has now failed for good.
func (a *Actor) lose(ctx actor.Context, c *Chunk, attempt int32, why string, crashed bool) {
	index := c.Range.GetIndex()
	node := a.placedOn[index]
	a.settled(index)
	if a.recordLost(c, attempt, node, why, crashed) {
		a.maybeFinish(ctx)
		return
	}
	a.dispatch(ctx, c)
}

// recordLost records that attempt of chunk c was lost with node, crashed if
// the node crashed while the attempt ran there, and reports whether the
// chunk failed for good: lost too often, or in flight at MaxCrashes crashes.
func (a *Actor) recordLost(c *Chunk, attempt int32, node, why string, crashed bool) (permanent bool) {
	index := c.Range.GetIndex()
	lost := &messages.ChunkFailed{Index: index, Attempt: attempt, Node: node, Error: why, Lost: true, Crashed: crashed}
	outcome := metrics.OutcomeLost
	if crashed {
		outcome = metrics.OutcomeCrashed
		if c.Crashes+1 >= a.cfg.MaxCrashes {
			lost.Permanent = true
			lost.Error = fmt.Sprintf("the chunk was in flight when its node crashed %d times", c.Crashes+1)
			outcome = metrics.OutcomeFailed
		}
	}
	a.cfg.Log.Warn("chunk attempt lost", "job", a.id, "chunk", index, "attempt", attempt, "node", node, "why", why,
		"crashed", crashed, "permanent", lost.Permanent)
	a.persist(&messages.JobEvent{Event: &messages.JobEvent_ChunkFailed{ChunkFailed: lost}})
	metrics.ChunkFinished(outcome, 0)
	if lost.Permanent {
		return true
	}
	if c.Lost >= maxLost {
		a.persist(&messages.JobEvent{Event: &messages.JobEvent_ChunkFailed{ChunkFailed: &messages.ChunkFailed{
			Index: index, Attempt: attempt, Node: node, Permanent: true,
			Error: fmt.Sprintf("%s (gave up after losing %d attempts)", why, c.Lost),
		}}})
		return true
	}
	return false
}

// maxLost bounds how often one chunk's attempts may be lost with their nodes.
const maxLost = 20

// current returns the chunk a message is about, or nil when the message is
// stale: from an attempt the job no longer waits for.
func (a *Actor) current(index, attempt int32, incarnation string) *Chunk {
	if a.finishing || a.st.CancelRequested || incarnation != a.incarnation {
		return nil
	}
	c, err := a.st.chunk(index)
	if err != nil || c.Terminal() || a.inFlight[index] != attempt {
		return nil
	}
	return c
}

func (a *Actor) running(ctx actor.Context, m *messages.ChunkRunning) {
	if a.current(m.GetIndex(), m.GetAttempt(), m.GetOwnerIncarnation()) == nil {
		return
	}
	a.persist(&messages.JobEvent{Event: &messages.JobEvent_ChunkStarted{ChunkStarted: &messages.ChunkStarted{
		Index: m.GetIndex(), Attempt: m.GetAttempt(), Node: m.GetNode(),
	}}})
	if m.GetNode() == a.cfg.Node { // test-only: a quirefault build may die here
		c, _ := a.st.chunk(m.GetIndex())
		fault.ChunkStarted(a.st.Created.GetFileSha256(), c.Range.GetFirstPage(), c.Range.GetLastPage())
	}
	if m.GetNode() != a.cfg.Node {
		// The attempt has its own deadline and a watchdog past it.
		a.startedAt[m.GetIndex()] = time.Now()
		a.remind(ctx, m.GetIndex(), m.GetAttempt(), a.runningDeadline())
	}
}

func (a *Actor) result(ctx actor.Context, m *messages.ChunkResult) {
	c := a.current(m.GetIndex(), m.GetAttempt(), m.GetOwnerIncarnation())
	if c == nil {
		a.cfg.Log.Debug("stale chunk result ignored", "job", a.id, "chunk", m.GetIndex(), "attempt", m.GetAttempt())
		return
	}
	a.settled(m.GetIndex())
	if m.GetOk() {
		ev := a.event(&messages.JobEvent{Event: &messages.JobEvent_ChunkDone{ChunkDone: &messages.ChunkDone{
			Index: m.GetIndex(), Attempt: m.GetAttempt(), Node: m.GetNode(), DurationMs: m.GetDurationMs(), Usage: m.GetUsage(),
		}}})
		b := a.cfg.Store.NewBatch()
		b.PutChunkOutput(a.id, &messages.ChunkOutput{
			Index: c.Range.GetIndex(), FirstPage: c.Range.GetFirstPage(), LastPage: c.Range.GetLastPage(), Output: m.GetOutput(),
		})
		b.AppendJobEvent(ev)
		a.commit(b, ev)
		metrics.ChunkFinished(metrics.OutcomeDone, time.Duration(m.GetDurationMs())*time.Millisecond)
		a.cfg.Log.Debug("chunk result recorded", "job", a.id, "chunk", m.GetIndex(), "attempt", m.GetAttempt(), "node", m.GetNode())
		a.maybeFinish(ctx)
		return
	}
	// A rate-limited attempt is the service asking us to slow down, not the
	// chunk failing: it does not count against the attempt limit, only
	// against a much larger one that stops a chunk from waiting for ever.
	maxAttempts := a.st.Created.GetMaxAttempts()
	failures := c.Failures - c.RateLimited - c.Lost
	if !m.GetRateLimited() {
		failures++
	}
	permanent := m.GetPermanent() || failures >= maxAttempts ||
		c.Attempts-c.RateLimited-c.Lost >= 2*maxAttempts || c.RateLimited >= maxRateLimited
	msg := m.GetError()
	if !m.GetPermanent() && permanent {
		msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, c.Attempts)
	}
	a.persist(&messages.JobEvent{Event: &messages.JobEvent_ChunkFailed{ChunkFailed: &messages.ChunkFailed{
		Index: m.GetIndex(), Attempt: m.GetAttempt(), Node: m.GetNode(), Error: msg, Permanent: permanent,
		RateLimited: m.GetRateLimited(), Usage: m.GetUsage(),
	}}})
	metrics.ChunkFinished(failureOutcome(permanent, m.GetRateLimited()), time.Duration(m.GetDurationMs())*time.Millisecond)
	if permanent {
		a.maybeFinish(ctx)
		return
	}
	a.retryLater(ctx, c, time.Duration(m.GetRetryAfterMs())*time.Millisecond)
}

// maxRateLimited bounds how often one chunk may be turned away by rate limits.
const maxRateLimited = 50

// retryLater tries chunk c again after a jittered exponential backoff, and
// no sooner than the service asked (atLeast).
func (a *Actor) retryLater(ctx actor.Context, c *Chunk, atLeast time.Duration) {
	backoff := a.cfg.RetryBase << min(max(c.Failures-1, 0), 16)
	if backoff > a.cfg.RetryMax || backoff <= 0 {
		backoff = a.cfg.RetryMax
	}
	backoff = backoff/2 + rand.N(backoff/2+1) // jitter: 50%..100%
	if backoff < atLeast {
		backoff = atLeast + rand.N(atLeast/4+1) // never before the service asked; spread the herd
	}
	self, root, index := ctx.Self(), ctx.ActorSystem().Root, c.Range.GetIndex()
	time.AfterFunc(backoff, func() { root.Send(self, &messages.RetryChunk{Index: index}) })
}

func (a *Actor) cancel(ctx actor.Context, m *messages.CancelJob) *messages.CancelReply {
	if a.st.Status.Terminal() || a.finishing {
		return &messages.CancelReply{Status: a.st.Status, Accepted: false}
	}
	if !a.st.CancelRequested {
		a.persist(&messages.JobEvent{Event: &messages.JobEvent_CancelRequested{CancelRequested: &messages.CancelRequested{Reason: m.GetReason()}}})
		for range a.inFlight { // the attempts given up with the job
			metrics.ChunkFinished(metrics.OutcomeCancelled, 0)
		}
	}
	for _, d := range a.cfg.Placer.Dispatchers() {
		ctx.Send(d, &messages.ForgetJob{JobId: a.id})
	}
	a.finish(ctx, messages.JobStatus_JOB_STATUS_CANCELLED, "")
	return &messages.CancelReply{Status: a.st.Status, Accepted: true}
}

func (a *Actor) maybeFinish(ctx actor.Context) {
	if a.finishing || !a.st.AllEnded() {
		return
	}
	status := a.st.Outcome()
	errMsg := ""
	if status != messages.JobStatus_JOB_STATUS_COMPLETED {
		cnt := a.st.Counts()
		errMsg = fmt.Sprintf("%d of %d chunks failed; their pages were refunded", cnt.Failed, cnt.Total)
	}
	a.finish(ctx, status, errMsg)
}

// finish settles the job's credits and records how it ended, in one durable
// write through the ledger, then stops the actor.
func (a *Actor) finish(ctx actor.Context, status messages.JobStatus, errMsg string) {
	a.finishing = true
	cr := a.st.Created
	charge := a.st.DonePages() * cr.GetCreditsPerPage()
	if charge > cr.GetCreditsReserved() {
		charge = cr.GetCreditsReserved()
	}
	refund := cr.GetCreditsReserved() - charge
	ev := a.event(&messages.JobEvent{Event: &messages.JobEvent_Finished{Finished: &messages.JobFinished{
		Status: status, CreditsCharged: charge, CreditsRefunded: refund, Error: errMsg,
	}}})
	settleCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	settle := &messages.SettleCredits{AccountId: cr.GetAccountId(), JobId: a.id, Charge: charge, Refund: refund, Finished: ev}
	if a.cfg.RemoteLedger {
		settle.Finished = nil
	}
	if _, err := a.cfg.Ledger.Settle(settleCtx, settle); err != nil {
		if !errors.Is(err, ledger.ErrUnavailable) && !errors.Is(err, ledger.ErrStorage) {
			// The ledger refused: a bug (charge + refund != reserved); loud.
			panic(fmt.Errorf("job %s: settle credits: %w", a.id, err))
		}
		// Nothing was written. Try again later; the settlement is idempotent
		// by job, so an attempt that did land is not applied twice.
		a.cfg.Log.Warn("settle credits later", "job", a.id, "err", err)
		self, root := ctx.Self(), ctx.ActorSystem().Root
		retry := &messages.RetryFinish{Status: status, Error: errMsg}
		time.AfterFunc(a.cfg.RetryBase+rand.N(a.cfg.RetryBase+1), func() { root.Send(self, retry) })
		return
	}
	if a.cfg.RemoteLedger {
		// Settled; a crash before this write settles again at the restart,
		// which the ledger answers as already done.
		b := a.cfg.Store.NewBatch()
		b.AppendJobEvent(ev)
		a.commit(b, ev)
	} else if err := a.st.Apply(ev); err != nil {
		panic(err)
	}
	a.cfg.Log.Info("job finished", "job", a.id, "status", status.Label(), "charged", charge, "refunded", refund)
	metrics.JobFinished(metrics.JobStatus(status.Label()), jobRoute(cr.GetRoute()), cr.GetAccountNumber(), int(cr.GetPages()), a.cfg.Now().Sub(a.st.CreatedAt))
	a.done(ctx)
}

// done releases what the job held and stops the actor.
func (a *Actor) done(ctx actor.Context) {
	for index := range a.placedOn {
		a.settled(index)
	}
	for _, d := range a.cfg.Placer.Dispatchers() {
		ctx.Send(d, &messages.ForgetJob{JobId: a.id})
	}
	if err := a.cfg.Store.RemoveBlob(a.id); err != nil {
		a.cfg.Log.Warn("remove job pdf", "job", a.id, "err", err)
	}
	ctx.Stop(ctx.Self())
}

// event stamps ev with the job id, the next sequence number and the time.
func (a *Actor) event(ev *messages.JobEvent) *messages.JobEvent {
	ev.JobId = a.id
	ev.Seq = a.st.LastSeq + 1
	ev.AtUnixMs = a.cfg.Now().UnixMilli()
	return ev
}

func (a *Actor) persist(ev *messages.JobEvent) {
	ev = a.event(ev)
	b := a.cfg.Store.NewBatch()
	b.AppendJobEvent(ev)
	a.commit(b, ev)
}

// commit writes b durably and applies ev; a failed write fails the actor, so
// that its restart replays only what is durable.
func (a *Actor) commit(b *persistence.Batch, ev *messages.JobEvent) {
	if err := b.Commit(); err != nil {
		panic(fmt.Errorf("job %s: persist: %w", a.id, err))
	}
	if err := a.st.Apply(ev); err != nil {
		panic(fmt.Errorf("job %s: %w", a.id, err))
	}
}

// failureOutcome is the metrics outcome of a failed attempt.
func failureOutcome(permanent, rateLimited bool) metrics.ChunkOutcome {
	switch {
	case permanent:
		return metrics.OutcomeFailed
	case rateLimited:
		return metrics.OutcomeRateLimited
	}
	return metrics.OutcomeRetried
}

// jobRoute is the metrics route of a job's JobCreated.route ("" is async:
// jobs from before the field).
func jobRoute(route string) metrics.Route {
	if route == "" {
		return metrics.RouteAsync
	}
	return metrics.Route(route)
}
