package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/cluster/raftgroup"
	"github.com/quirehq/quire/internal/fault"
	"github.com/quirehq/quire/messages"
)

// The ledger is replicated: every node keeps a replica of it (a Raft state
// machine, ledger.Machine) and runs a LedgerActor on it; requests go to the
// leader's LedgerActor (resolveLedger), which proposes every change to the
// Raft group and answers once a majority has it. A job's events still live
// on the node that accepted it, so a job is paid for in two steps:
//
//  1. the node records a PendingReservation in its own store,
//  2. the ledger reserves the credits (the reservation names the node),
//  3. the node records the job and removes the pending record in one write.
//
// A pending record left behind (the ledger did not answer, the node crashed
// between 2 and 3) is voided: settled at the ledger with a full refund, or, if
// the reservation never arrived, marked so that it is refused when it does.
// Either way, no credit stays reserved for a job that does not exist.

const (
	// remoteLedgerTimeout bounds one request to a ledger on another node.
	remoteLedgerTimeout = 5 * time.Second
	// pendingGrace is how old a pending reservation must be before the sweep
	// voids it (a submission in progress holds it for at most one request).
	pendingGrace = 3 * remoteLedgerTimeout
	// authFallbackTTL is how long a key the ledger accepted is still accepted
	// by this node while the ledger node cannot be reached.
	authFallbackTTL = 10 * time.Minute
)

// HoldsLedger reports whether this node is the Raft leader: the node whose
// LedgerActor the others ask.
func (n *Node) HoldsLedger() bool { return n.raft.IsLeader() }

// LedgerNode is the name of the Raft leader, or "" while there is none.
func (n *Node) LedgerNode() string { return nodeOfRaftID(n.raft.Leader()) }

// raftID is a node's Raft server id: its name and its data dir's id. A
// node that lost its data dir comes back as another server.
func raftID(name, nodeID string) string { return name + "@" + nodeID }

// nodeOfRaftID is the node name in a Raft server id.
func nodeOfRaftID(id string) string {
	name, _, _ := strings.Cut(id, "@")
	return name
}

// WaitLedger waits until the Raft group has a leader (and this node's
// replica has what was committed before its term), at most timeout.
func (n *Node) WaitLedger(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if _, err := n.ledger.Balance(ctx, "ledger-probe", 0); err == nil || errors.Is(err, ledger.ErrUnknownAccount) {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("the ledger did not answer within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// resolveLedger is the address of the leader's LedgerActor, or an error
// wrapping ledger.ErrUnavailable that says why it cannot be reached now.
func (n *Node) resolveLedger() (*actor.PID, error) {
	name := nodeOfRaftID(n.raft.Leader())
	if name == "" && n.cluster == nil {
		if err := n.cfg.Store.WritesRefused(); err != nil {
			// Alone, with a store that takes no writes: the group cannot run.
			return nil, fmt.Errorf("%w: %w: %w", ledger.ErrUnavailable, ledger.ErrNoLeaderSoon, err)
		}
	}
	if name == "" {
		return nil, fmt.Errorf("%w: the Raft group has no leader now (an election, or too few servers alive for a quorum)", ledger.ErrUnavailable)
	}
	if name == n.cfg.Name {
		return n.ledgerPID, nil
	}
	if n.cluster == nil {
		return nil, fmt.Errorf("%w: the Raft leader %s is not this node and this node is not in a cluster", ledger.ErrUnavailable, name)
	}
	for _, m := range n.cluster.Members() {
		if m.Name != name {
			continue
		}
		switch {
		case m.State != cluster.StateAlive || m.RemoteAddr == "":
			return nil, fmt.Errorf("%w: the Raft leader %s is not in the cluster", ledger.ErrUnavailable, name)
		case n.placer != nil && n.placer.isDown(name):
			return nil, fmt.Errorf("%w: lost the connection to the Raft leader %s", ledger.ErrUnavailable, name)
		}
		return actor.NewPID(m.RemoteAddr, ledgerName), nil
	}
	return nil, fmt.Errorf("%w: the Raft leader %s is not known to gossip yet", ledger.ErrUnavailable, name)
}

// raftConfig is the node's member of the Raft group, with machine as its
// state machine.
func (n *Node) raftConfig(machine *ledger.Machine) raftgroup.Config {
	c := n.cfg
	rc := raftgroup.Config{
		ID: n.raftID, BindAddr: c.RaftAddr, Dir: filepath.Join(c.Store.Dir(), "raft"), Store: c.Store, FSM: machine.FSM(),
		BootstrapExpect: c.BootstrapExpect, MaxVoters: c.MaxVoters, Members: n.raftMembers, OnBootstrap: n.formCluster,
		HeartbeatTimeout: c.RaftTiming.Heartbeat, ElectionTimeout: c.RaftTiming.Election,
		LeaderLeaseTimeout: c.RaftTiming.LeaderLease, ReconcileEvery: c.RaftTiming.Reconcile,
		Log: c.Log.With("component", "raft"),
	}
	if c.TLS != nil {
		rc.Server, rc.Client = c.TLS.Server(), c.TLS.Client()
	}
	if c.GossipAddr == "" && c.RaftTiming == (RaftTiming{}) {
		// Alone, there is no network to wait for: elect at once.
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	}
	return rc
}

// raftMembers are the live members the Raft group may take in: those that
// gossip a Raft address and are not leaving.
func (n *Node) raftMembers() []raftgroup.Server {
	self := raftgroup.Server{ID: n.raftID, Addr: n.cfg.RaftAddr}
	c := n.gossip.Load()
	if c == nil {
		return []raftgroup.Server{self}
	}
	var out []raftgroup.Server
	for _, m := range c.Members() {
		if m.State == cluster.StateAlive && !m.Leaving && m.RaftAddr != "" && m.RaftID != "" {
			out = append(out, raftgroup.Server{ID: m.RaftID, Addr: m.RaftAddr, Formed: m.RaftFormed})
		}
	}
	return out
}

// formCluster gives the cluster an id when the Raft group forms and the
// node has none (no node formed it at its start, e.g. every server was
// started with --join): the same on every server that forms the group, as
// it is made from the group's first servers.
func (n *Node) formCluster(ids []string) {
	c := n.gossip.Load()
	if c == nil {
		return
	}
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("quire cluster\x00"+strings.Join(ids, "\x00"))).String()
	if c.FormWith(id) {
		n.cfg.Log.Info("formed the cluster with the Raft group", "cluster_id", id)
	}
}

// RaftStatus is the Raft group as this node sees it, by node name.
type RaftStatus struct {
	// Leader is the leader's node name ("" during an election).
	Leader string
	// Roles is the role of each node that is a server, by name: that of
	// its live member's server when a name has several (a node that came
	// back with an empty data dir).
	Roles map[string]string
	// Lost are servers no live member is.
	Lost []LostServer
}

// LostServer is a server of the group that no live member is.
type LostServer struct{ Name, ID, Role string }

// RoleOf is a node's role, raftgroup.RoleNone when it is not a server.
func (s RaftStatus) RoleOf(name string) string {
	if r, ok := s.Roles[name]; ok {
		return r
	}
	return raftgroup.RoleNone
}

// RaftStatus reads the Raft group's configuration.
func (n *Node) RaftStatus() RaftStatus {
	live := n.liveRaftIDs()
	st := RaftStatus{Leader: nodeOfRaftID(n.raft.Leader()), Roles: map[string]string{}}
	for id, role := range n.raft.Roles() {
		name := nodeOfRaftID(id)
		if live[id] || id == n.raftID {
			st.Roles[name] = role
			continue
		}
		st.Lost = append(st.Lost, LostServer{Name: name, ID: id, Role: role})
		if _, ok := st.Roles[name]; !ok && !liveName(live, name) {
			st.Roles[name] = role
		}
	}
	slices.SortFunc(st.Lost, func(a, b LostServer) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// liveRaftIDs are the Raft server ids live members gossip.
func (n *Node) liveRaftIDs() map[string]bool {
	live := map[string]bool{}
	for _, m := range n.raftMembers() {
		live[m.ID] = true
	}
	return live
}

func liveName(live map[string]bool, name string) bool {
	for id := range live {
		if nodeOfRaftID(id) == name {
			return true
		}
	}
	return false
}

// RemoveServer takes out of the Raft group every server of the node name
// that no live member is (a node lost for good, or the server a node was
// before it lost its data dir); on the leader only (ErrNotLeader).
func (n *Node) RemoveServer(ctx context.Context, name string) ([]string, error) {
	if !n.raft.IsLeader() {
		return nil, ErrNotLeader
	}
	live := n.liveRaftIDs()
	var removed []string
	for id := range n.raft.Roles() {
		if nodeOfRaftID(id) != name || live[id] || id == n.raftID {
			continue
		}
		if err := n.raft.Remove(id); err != nil {
			if errors.Is(err, raftgroup.ErrNotLeader) {
				return removed, ErrNotLeader
			}
			return removed, err
		}
		removed = append(removed, id)
	}
	if len(removed) == 0 {
		return nil, ErrNotFound
	}
	slices.Sort(removed)
	return removed, nil
}

// raftProposer proposes ledger commands to the Raft group.
type raftProposer struct{ g *raftgroup.Group }

func (p raftProposer) Propose(cmd *messages.LedgerCommand) (any, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	return p.g.Propose(data, remoteLedgerTimeout)
}

// checkMigration says whether the store holds a ledger written before the
// Raft group (a data dir of the previous version): it becomes the group's
// state when this node forms the group alone, and is refused otherwise,
// with what to do.
func checkMigration(cfg Config) (bool, error) {
	last, err := cfg.Store.RaftLog().LastIndex()
	if err != nil {
		return false, fmt.Errorf("node: read the Raft log: %w", err)
	}
	applied, err := cfg.Store.LedgerApplied()
	if err != nil {
		return false, err
	}
	accounts, err := cfg.Store.AccountSeq()
	if err != nil {
		return false, err
	}
	if last > 0 || applied > 0 || accounts == 0 {
		return false, nil
	}
	if cfg.BootstrapExpect != 1 || len(cfg.Join) > 0 {
		return false, fmt.Errorf("node: this data dir holds a ledger (%d accounts) written before the Raft group: "+
			"start this node alone first (no --join, no --bootstrap-expect) so that its ledger becomes the group's state, "+
			"then start the other nodes with --join", accounts)
	}
	cfg.Log.Info("this data dir holds a ledger from before the Raft group: it becomes the group's state", "accounts", accounts)
	return true, nil
}

// compactMigrated, once this node leads the group it formed on a migrated
// ledger, snapshots it and drops the log before the snapshot: a server
// that joins later gets the whole ledger from the snapshot, not the log
// (which does not hold what was there before the group).
func (n *Node) compactMigrated(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !n.raft.IsLeader() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	if err := n.raft.CompactNow(); err != nil {
		n.cfg.Log.Error("snapshot the migrated ledger: servers that join will not have it", "err", err)
		return
	}
	n.cfg.Log.Info("migrated ledger snapshotted: servers that join get it")
}

// ledgerName is the actor name of the LedgerActor on its node.
const ledgerName = "ledger"

// authCache remembers the keys a remote ledger accepted, so that clients
// already known can still read their jobs while the ledger node is down. It
// is consulted only when the ledger cannot be asked; a key the ledger refuses
// is forgotten at once.
type authCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]authEntry
}

type authEntry struct {
	account *messages.Account
	at      time.Time
}

func (c *authCache) put(sum [sha256.Size]byte, a *messages.Account, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]authEntry{}
	}
	c.entries[sum] = authEntry{account: a, at: now}
	if len(c.entries) > 100_000 { // bound it: drop the stale ones
		for k, e := range c.entries {
			if now.Sub(e.at) > authFallbackTTL {
				delete(c.entries, k)
			}
		}
	}
}

func (c *authCache) get(sum [sha256.Size]byte, now time.Time) (*messages.Account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sum]
	if !ok || now.Sub(e.at) > authFallbackTTL {
		return nil, false
	}
	return e.account, true
}

func (c *authCache) drop(sum [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, sum)
}

// authenticateRemote asks the ledger's node for the account of a key.
func (n *Node) authenticateRemote(ctx context.Context, sum [sha256.Size]byte) (*messages.Account, error) {
	acct, err := n.ledger.Authenticate(ctx, sum[:])
	switch {
	case err == nil:
		n.auth.put(sum, acct, n.cfg.Now())
		return acct, nil
	case errors.Is(err, ledger.ErrUnauthorized):
		n.auth.drop(sum)
		return nil, ErrUnauthorized
	case errors.Is(err, ledger.ErrUnavailable):
		if acct, ok := n.auth.get(sum, n.cfg.Now()); ok {
			return acct, nil
		}
	}
	return nil, err
}

// reserveRemote pays for a job at a ledger on another node and records the
// job here (steps 1 to 3 above). On an error nothing is recorded here, and
// the reservation, if the ledger made it, is voided.
func (n *Node) reserveRemote(ctx context.Context, req *messages.ReserveCredits) error {
	p := &messages.PendingReservation{
		JobId: req.GetJobId(), AccountId: req.GetAccountId(), Amount: req.GetAmount(), AtUnixMs: n.cfg.Now().UnixMilli(),
	}
	n.submitting(p.GetJobId(), true)
	defer n.submitting(p.GetJobId(), false)
	b := n.cfg.Store.NewBatch()
	b.PutPending(p)
	if err := b.Commit(); err != nil {
		return err
	}
	evs := req.GetJobEvents()
	remote := &messages.ReserveCredits{
		AccountId: req.GetAccountId(), JobId: req.GetJobId(), Amount: req.GetAmount(),
		Idempotency: req.GetIdempotency(), OwnerNode: n.cfg.Name, MaxActiveJobs: req.GetMaxActiveJobs(),
	}
	fault.Reserving(p.GetJobId())
	_, err := n.ledger.Reserve(ctx, remote)
	if err == nil {
		fault.Reserved(p.GetJobId())
	}
	if err != nil {
		if errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, ledger.ErrStorage) {
			// The ledger may have reserved: void it, now or at the next sweep.
			go n.voidPending(p)
			return err
		}
		// Refused: nothing was reserved.
		if derr := n.dropPending(p.GetJobId()); derr != nil {
			n.cfg.Log.Error("remove pending reservation", "job", p.GetJobId(), "err", derr)
		}
		return err
	}
	b = n.cfg.Store.NewBatch()
	for _, ev := range evs {
		b.AppendJobEvent(ev)
	}
	b.DeletePending(p.GetJobId())
	if err := b.Commit(); err != nil {
		go n.voidPending(p)
		return fmt.Errorf("%w: record job %s: %v", ErrUnavailable, p.GetJobId(), err)
	}
	return nil
}

func (n *Node) dropPending(job string) error {
	b := n.cfg.Store.NewBatch()
	b.DeletePending(job)
	return b.Commit()
}

// submitting marks a job whose submission is in progress, so that the sweep
// leaves its pending reservation alone.
func (n *Node) submitting(job string, on bool) {
	n.pending.Lock()
	defer n.pending.Unlock()
	if n.pending.jobs == nil {
		n.pending.jobs = map[string]bool{}
	}
	if on {
		n.pending.jobs[job] = true
	} else {
		delete(n.pending.jobs, job)
	}
}

func (n *Node) isSubmitting(job string) bool {
	n.pending.Lock()
	defer n.pending.Unlock()
	return n.pending.jobs[job]
}

// voidPending settles a pending reservation with a full refund at the ledger
// and removes it; on failure the sweep tries again later.
func (n *Node) voidPending(p *messages.PendingReservation) bool {
	ctx, cancel := context.WithTimeout(context.Background(), remoteLedgerTimeout)
	defer cancel()
	_, err := n.ledger.Settle(ctx, &messages.SettleCredits{
		AccountId: p.GetAccountId(), JobId: p.GetJobId(), Charge: 0, Refund: p.GetAmount(), Void: true,
	})
	if err != nil && !errors.Is(err, ledger.ErrUnknownAccount) {
		n.cfg.Log.Warn("void a reservation of a job that was not recorded: will try again", "job", p.GetJobId(), "err", err)
		return false
	}
	if err := n.dropPending(p.GetJobId()); err != nil {
		n.cfg.Log.Error("remove voided pending reservation", "job", p.GetJobId(), "err", err)
		return false
	}
	n.cfg.Log.Info("voided the reservation of a job that was not recorded", "job", p.GetJobId(), "credits", p.GetAmount())
	return true
}

// sweepPending voids the pending reservations left behind, every period:
// at start all of them (no submission is in progress), later those older
// than pendingGrace.
func (n *Node) sweepPending(ctx context.Context, every time.Duration) {
	first := true
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pending, err := n.cfg.Store.PendingReservations()
		if err != nil {
			n.cfg.Log.Error("list pending reservations", "err", err)
		}
		now := n.cfg.Now().UnixMilli()
		for _, p := range pending {
			if ctx.Err() != nil {
				return
			}
			if n.isSubmitting(p.GetJobId()) || (!first && now-p.GetAtUnixMs() < pendingGrace.Milliseconds()) {
				continue
			}
			n.voidPending(p)
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
