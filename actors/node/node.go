package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/actors/dispatch"
	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// Node is one running Quire node.
type Node struct {
	cfg        Config
	system     *actor.ActorSystem
	ledger     *ledger.Client
	dispatcher *actor.PID
	jobCfg     job.Config

	mu struct {
		sync.Mutex
		closed bool // no job actor is started once set
	}
}

// Start checks the ledger, starts the actors and resumes every job that had
// not finished.
//
// Shutdown order (Close): the HTTP server stops first (no new requests), then
// the actors, senders before receivers (job actors, dispatcher and its chunk
// actors, ledger), then the caller closes the engine and the store.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ledger.Verify(cfg.Store); err != nil {
		return nil, fmt.Errorf("node: refusing to start: %w", err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return cfg.Log.With("component", "actors")
	}))
	ledgerPID, err := system.Root.SpawnNamed(ledger.Props(cfg.Store, cfg.Log.With("component", "ledger"), cfg.Now), "ledger")
	if err != nil {
		return nil, fmt.Errorf("node: start ledger: %w", err)
	}
	dispatcherPID, err := system.Root.SpawnNamed(dispatch.Props(dispatch.Config{
		Node: cfg.Name, Capacity: cfg.Concurrency, Extractors: cfg.Extractors, Log: cfg.Log.With("component", "dispatch"),
	}), "dispatcher")
	if err != nil {
		return nil, fmt.Errorf("node: start dispatcher: %w", err)
	}
	n := &Node{cfg: cfg, system: system, dispatcher: dispatcherPID}
	n.ledger = ledger.NewClient(system.Root, ledgerPID, 10*time.Second)
	n.jobCfg = job.Config{
		Node: cfg.Name, Store: cfg.Store, Ledger: n.ledger, Dispatcher: dispatcherPID,
		ChunkTimeout: cfg.ChunkTimeout, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax,
		Log: cfg.Log.With("component", "job"), Now: cfg.Now,
	}
	if err := n.recover(); err != nil {
		system.Shutdown()
		return nil, err
	}
	return n, nil
}

// recover resumes every job that has not finished, and removes PDFs that
// belong to no running job.
func (n *Node) recover() error {
	active, err := n.cfg.Store.ActiveJobs()
	if err != nil {
		return fmt.Errorf("node: recovery scan: %w", err)
	}
	running := map[string]bool{}
	for _, id := range active {
		running[id] = true
		if _, err := n.spawnJob(id); err != nil {
			return err
		}
	}
	if len(active) > 0 {
		n.cfg.Log.Info("resumed unfinished jobs", "count", len(active))
	}
	blobs, err := n.cfg.Store.Blobs()
	if err != nil {
		return err
	}
	for _, id := range blobs {
		if !running[id] {
			if err := n.cfg.Store.RemoveBlob(id); err != nil {
				return err
			}
			n.cfg.Log.Info("removed pdf of no running job", "job", id)
		}
	}
	return nil
}

func (n *Node) spawnJob(id string) (*actor.PID, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return nil, fmt.Errorf("%w: node closed, job %s resumes at the next start", ErrUnavailable, id)
	}
	pid, err := n.system.Root.SpawnNamed(job.Props(n.jobCfg, id), job.Name(id))
	if err != nil && !errors.Is(err, actor.ErrNameExists) {
		return nil, fmt.Errorf("node: start job %s: %w", id, err)
	}
	return pid, nil
}

// Close stops every actor and waits until they have stopped, so that nothing
// of this node writes to the store afterwards: first the job actors (they ask
// the dispatcher and the ledger), then the dispatcher, whose chunk actors stop
// with it and cancel their extractors, then the ledger. Jobs that were running
// resume at the next start. Calling Close again does nothing.
func (n *Node) Close() {
	n.mu.Lock()
	closed := n.mu.closed
	n.mu.closed = true // no job actor starts from now on
	n.mu.Unlock()
	if closed {
		return
	}
	root := n.system.Root
	stopAll := func(pids ...*actor.PID) {
		futures := make([]*actor.Future, len(pids))
		for i, pid := range pids {
			futures[i] = root.StopFuture(pid)
		}
		for i, f := range futures {
			if err := f.Wait(); err != nil {
				n.cfg.Log.Warn("actor did not stop in time", "actor", pids[i].GetId(), "err", err)
			}
		}
	}
	// A job actor runs exactly while its job is active; one that is just
	// finishing writes nothing more.
	active, err := n.cfg.Store.ActiveJobs()
	if err != nil {
		n.cfg.Log.Error("list jobs to stop", "err", err)
	}
	jobs := make([]*actor.PID, len(active))
	for i, id := range active {
		jobs[i] = actor.NewPID(n.system.Address(), job.Name(id))
	}
	stopAll(jobs...)
	stopAll(n.dispatcher)
	stopAll(n.ledger.PID())
	n.system.Shutdown()
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Config is the node's configuration, defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Ledger is the client of the node's LedgerActor.
func (n *Node) Ledger() *ledger.Client { return n.ledger }

// Store is the node's store.
func (n *Node) Store() *persistence.Store { return n.cfg.Store }

// Slots reports the node's chunk slots: capacity, busy, and chunks waiting.
func (n *Node) Slots(ctx context.Context) (*messages.DispatcherStatsReply, error) {
	res, err := n.system.Root.RequestFuture(n.dispatcher, &messages.DispatcherStats{}, 5*time.Second).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: dispatcher: %v", ErrUnavailable, err)
	}
	return res.(*messages.DispatcherStatsReply), nil
}

// NewUpload starts receiving an upload into the store's temporary area.
func (n *Node) NewUpload() (*persistence.Upload, error) { return n.cfg.Store.NewUpload() }

// Ready reports why the node cannot take work, or nil.
func (n *Node) Ready(ctx context.Context) error {
	if _, err := n.ledger.Balance(ctx, "readiness-probe", 0); err != nil && !errors.Is(err, ledger.ErrUnknownAccount) {
		return fmt.Errorf("ledger not answering: %w", err)
	}
	if _, err := n.cfg.Store.LedgerSeq(); err != nil {
		return fmt.Errorf("store not readable: %w", err)
	}
	return nil
}
