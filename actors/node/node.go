package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/quirehq/quire/actors/dispatch"
	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/cluster/raftgroup"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/metrics"
	"github.com/quirehq/quire/persistence"
)

// Node is one running Quire node.
type Node struct {
	cfg        Config
	system     *actor.ActorSystem
	ledger     *ledger.Client
	ledgerPID  *actor.PID       // this node's LedgerActor (on its replica)
	raft       *raftgroup.Group // this node's member of the Raft group
	raftID     string           // its Raft server id (raftID)
	dispatcher *actor.PID
	jobCfg     job.Config
	remote     *remote.Remote   // nil unless clustered
	cluster    *cluster.Cluster // nil unless clustered
	placer     *placer          // nil unless clustered
	stop       context.CancelFunc
	wg         sync.WaitGroup
	auth       authCache   // keys a remote ledger accepted (fallback while it is down)
	meters     nodeMetrics // what /metrics reads of this node (metrics.go)

	rollout rolloutState // the cluster's rollout policy as last read (rollout.go)

	// gossip is cluster, for the actor port's connection checks, which
	// start before it is set (remote_tls.go).
	gossip atomic.Pointer[cluster.Cluster]

	pending struct {
		sync.Mutex
		jobs map[string]bool // submissions waiting for a remote ledger
	}

	mu struct {
		sync.Mutex
		closed   bool // no job actor is started once set
		draining bool
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
	machine := ledger.NewMachine(cfg.Store, cfg.Log.With("component", "ledger"))
	if err := machine.Load(); err != nil {
		return nil, fmt.Errorf("node: load the ledger: %w", err)
	}
	if err := ledger.Verify(cfg.Store); err != nil {
		return nil, fmt.Errorf("node: refusing to start: %w", err)
	}
	metrics.SetLedgerDiscrepancy(0) // and checked again every ledgerCheckEvery
	migrate, err := checkMigration(cfg)
	if err != nil {
		return nil, err
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return cfg.Log.With("component", "actors")
	}))
	n := &Node{cfg: cfg, system: system}
	// Remote first: PIDs made before it starts would not carry its address.
	if cfg.RemoteAddr != "" {
		r, err := startRemote(system, cfg.RemoteAddr, cfg.TLS, n.remoteAddrOf, cfg.Log.With("component", "remote"))
		if err != nil {
			return nil, err
		}
		n.remote = r
	}
	nodeID, err := cfg.Store.NodeID()
	if err != nil {
		system.Shutdown()
		return nil, fmt.Errorf("node: %w", err)
	}
	n.raftID = raftID(cfg.Name, nodeID)
	group, err := raftgroup.Start(n.raftConfig(machine))
	if err != nil {
		system.Shutdown()
		return nil, fmt.Errorf("node: start the Raft group: %w", err)
	}
	n.raft = group
	// Every node runs a LedgerActor on its replica; the leader's is the
	// one asked (resolveLedger), and it proposes every change to the group.
	n.ledgerPID, err = system.Root.SpawnNamed(ledger.ReplicatedProps(machine, raftProposer{group}, group.ReadGate, cfg.Log.With("component", "ledger"), cfg.Now), ledgerName)
	if err != nil {
		_ = group.Close()
		system.Shutdown()
		return nil, fmt.Errorf("node: start ledger: %w", err)
	}
	n.ledger = ledger.NewRemoteClient(system.Root, n.resolveLedger, remoteLedgerTimeout).WithLocalReads(machine)
	dispatcherPID, err := system.Root.SpawnNamed(dispatch.Props(dispatch.Config{
		Node: cfg.Name, Capacity: cfg.Concurrency, Extractors: cfg.Extractors, Log: cfg.Log.With("component", "dispatch"),
		Source: n.fetchPDF, Forget: cfg.Store.RemoveCached, Gauges: &n.meters.gauges,
	}), dispatcherName)
	if err != nil {
		return nil, fmt.Errorf("node: start dispatcher: %w", err)
	}
	n.dispatcher = dispatcherPID
	n.jobCfg = job.Config{
		Node: cfg.Name, Store: cfg.Store, Ledger: n.ledger, RemoteLedger: true, Dispatcher: dispatcherPID,
		SourceURL:    sourceURL(cfg),
		ChunkTimeout: cfg.ChunkTimeout, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax,
		Log: cfg.Log.With("component", "job"), Now: cfg.Now,
	}
	n.jobCfg.MaxCrashes = int32(cfg.MaxChunkCrashes)
	bg, stop := context.WithCancel(context.Background())
	n.stop = stop
	if cfg.GossipAddr != "" {
		clusterID, err := cfg.Store.ClusterID()
		if err != nil {
			stop()
			_ = group.Close()
			system.Shutdown()
			return nil, err
		}
		c, err := cluster.Start(ctx, cluster.Config{
			Name: cfg.Name, BindAddr: cfg.GossipAddr, Join: cfg.Join, Log: cfg.Log.With("component", "cluster"),
			Meta: cluster.Meta{Name: cfg.Name, HTTPAddr: cfg.HTTPURL, PeerAddr: cfg.PeerAddr, RemoteAddr: system.Address(), Capacity: cfg.Concurrency, RaftAddr: cfg.RaftAddr,
				RaftID: n.raftID, RaftFormed: group.Formed()},
			GossipKeys: cfg.GossipKeys,
			// The ledger's node forms the cluster: with an empty store it
			// makes a new id, or refuses to start if the cluster exists (a
			// lost data dir must be restored, not replaced by a new ledger).
			ClusterID: clusterID, FormCluster: len(cfg.Join) == 0, OnClusterID: cfg.Store.SetClusterID,
		})
		if err != nil {
			stop()
			_ = group.Close()
			system.Shutdown()
			return nil, fmt.Errorf("node: join the cluster: %w", err)
		}
		n.cluster = c
		n.gossip.Store(c)
		n.placer = newPlacer(c, cfg.Name, dispatcherPID)
		n.jobCfg.Placer = n.placer
		n.wg.Add(2)
		go func() { defer n.wg.Done(); n.watchMembers(bg) }()
		go func() { defer n.wg.Done(); n.publishLoad(bg, 500*time.Millisecond) }()
	}
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.sweepPending(bg, 2*time.Second) }()
	go func() { defer n.wg.Done(); n.checkLedgerEvery(bg, ledgerCheckEvery) }()
	if migrate {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.compactMigrated(bg) }()
	}
	n.startRollout(bg) // reads the rollout policy now and every second after
	n.registerMetrics()
	// Recorded last, once nothing can fail the start but recovery (which
	// closes the node, a clean stop), so that a start that fails is not
	// taken for a crash by the next one.
	n.jobCfg.Boot = n.beginRun()
	if err := n.recover(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// beginRun records that this process uses the store and says whether the
// process before it crashed: that decides how the attempts it left running
// count (job.Boot). Close records a clean stop.
func (n *Node) beginRun() job.Boot {
	boot := job.Boot{At: n.cfg.Now()}
	afterCrash, err := n.cfg.Store.BeginRun(boot.At)
	if err != nil {
		// Not a reason not to serve (a full disk, say).
		n.cfg.Log.Error("could not record the start; a crash of this process may go uncounted", "err", err)
	}
	if afterCrash {
		n.cfg.Log.Warn("the previous process on this data dir crashed; chunks it was running count as crashed",
			"max_chunk_crashes", n.cfg.MaxChunkCrashes)
	}
	boot.AfterCrash = afterCrash
	return boot
}

// recover resumes every job that has not finished, and removes PDFs that
// belong to no running job. It never waits on a job: each JobActor resumes
// on its own, and a job that cannot resume is logged, not a reason for the
// node not to serve.
func (n *Node) recover() error {
	active, err := n.cfg.Store.ActiveJobs()
	if err != nil {
		return fmt.Errorf("node: recovery scan: %w", err)
	}
	running := map[string]bool{}
	for _, id := range active {
		running[id] = true
		if _, err := n.spawnJob(id); err != nil {
			n.cfg.Log.Error("job not resumed", "job", id, "err", err)
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
				n.cfg.Log.Warn("remove pdf of no running job", "job", id, "err", err)
				continue
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
	n.unregisterMetrics()
	// Stop gossiping load first: an update in flight would hold up the leave.
	n.stop()
	n.wg.Wait()
	if n.cluster != nil {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.cluster.Leave(lctx); err != nil {
			n.cfg.Log.Warn("leave the cluster", "err", err)
		}
		cancel()
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
	stopAll(n.ledgerPID)
	// The ledger's replica has its last entries on disk; a leader hands
	// over first, so that the others need not wait for an election.
	if err := n.raft.Close(); err != nil {
		n.cfg.Log.Warn("stop the Raft group", "err", err)
	}
	if n.cluster != nil {
		_ = n.cluster.Close()
	}
	if n.remote != nil {
		n.remote.Shutdown(true)
	}
	n.system.Shutdown()
	// Nothing of this node writes any more: a clean stop, not a crash.
	if err := n.cfg.Store.EndRun(); err != nil {
		n.cfg.Log.Error("record the clean stop", "err", err)
	}
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

// CheckSpace says whether the node's disk can take a new upload
// (persistence.ErrInsufficientStorage when not).
func (n *Node) CheckSpace() error { return n.cfg.Store.CheckSpace() }

// Drain stops placing new work on this node; what runs here finishes. It is
// gossiped, so the other nodes stop placing here too.
func (n *Node) Drain(ctx context.Context) error {
	n.mu.Lock()
	n.mu.draining = true
	n.mu.Unlock()
	if n.cluster == nil {
		return nil
	}
	return n.cluster.UpdateMeta(ctx, func(m *cluster.Meta) { m.Draining = true })
}

func (n *Node) draining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.draining
}

// WaitIdle waits until this node runs no chunk (after Drain), or ctx ends.
func (n *Node) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if st, err := n.Slots(ctx); err == nil && st.GetBusy() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
