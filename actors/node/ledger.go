package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/messages"
)

// The cluster has one LedgerActor, on the node named by Config.LedgerNode
// (see README, "Credits in a cluster"). Every other node asks it over remote:
// accounts, keys and balances are read there; a job is paid for in two steps,
// because its events live on the node that accepted it:
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

// ledgerLocation decides where the ledger is: on this node when it is not in
// a cluster, when it is named, or when nothing is named and this node joins
// no one (the first node of a cluster).
func (c *Config) ledgerIsLocal() bool {
	if c.GossipAddr == "" {
		return true
	}
	if c.LedgerNode != "" {
		return c.LedgerNode == c.Name
	}
	return len(c.Join) == 0
}

// HoldsLedger reports whether this node runs the cluster's LedgerActor.
func (n *Node) HoldsLedger() bool { return !n.jobCfg.RemoteLedger }

// LedgerNode is the name of the node that holds the ledger, or "" while this
// node has not learnt it from gossip yet.
func (n *Node) LedgerNode() string {
	if n.HoldsLedger() {
		return n.cfg.Name
	}
	name, _ := n.ledgerMember()
	return name
}

// ledgerMember finds the ledger's node among the members: by name when it is
// configured, else the node the members say holds it.
func (n *Node) ledgerMember() (string, *cluster.Member) {
	members := n.cluster.Members()
	name := n.cfg.LedgerNode
	if name == "" {
		for _, m := range members {
			if m.State == cluster.StateAlive && m.LedgerNode != "" {
				name = m.LedgerNode
				break
			}
		}
	}
	for i := range members {
		if members[i].Name == name {
			return name, &members[i]
		}
	}
	return name, nil
}

// resolveLedger is the address of the LedgerActor on its node, or an error
// wrapping ledger.ErrUnavailable that says why it cannot be reached now.
func (n *Node) resolveLedger() (*actor.PID, error) {
	name, m := n.ledgerMember()
	switch {
	case name == "":
		return nil, fmt.Errorf("%w: no member of the cluster says which node holds the ledger (set --ledger-node)", ledger.ErrUnavailable)
	case m == nil || m.State != cluster.StateAlive || m.RemoteAddr == "":
		return nil, fmt.Errorf("%w: the ledger's node %s is not in the cluster", ledger.ErrUnavailable, name)
	case m.Leaving:
		return nil, fmt.Errorf("%w: the ledger's node %s is leaving the cluster", ledger.ErrUnavailable, name)
	case n.placer != nil && n.placer.isDown(name):
		return nil, fmt.Errorf("%w: lost the connection to the ledger's node %s", ledger.ErrUnavailable, name)
	}
	return actor.NewPID(m.RemoteAddr, ledgerName), nil
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
	_, err := n.ledger.Reserve(ctx, remote)
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
