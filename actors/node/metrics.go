package node

import (
	"context"
	"sync"
	"time"

	"github.com/quirehq/quire/actors/dispatch"
	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/metrics"
)

// ledgerCheckEvery is how often the ledger's node verifies its ledger for
// quire_ledger_discrepancy (it also does at start, before it serves).
const ledgerCheckEvery = time.Minute

// ledgerCheckTries bounds the scans of one check while the ledger is busy:
// a scan counts only if no movement was written while it ran.
const ledgerCheckTries = 5

// nodeMetrics is what the node keeps for the gauges a scrape reads.
type nodeMetrics struct {
	gauges     dispatch.Gauges // written by the dispatcher
	unregister []func()

	ages struct {
		sync.Mutex
		known map[string]jobAge // active job -> when it was created, its size
	}
}

type jobAge struct {
	created time.Time
	size    metrics.Size
}

// registerMetrics hands the metrics package the callbacks of this node's
// gauges: chunk slots, ages of running jobs, Pebble. Close unregisters them.
func (n *Node) registerMetrics() {
	n.meters.unregister = append(n.meters.unregister,
		metrics.RegisterSlots(func() metrics.Slots {
			g := &n.meters.gauges
			return metrics.Slots{Queued: g.Queued(), Busy: g.Busy(), Capacity: n.cfg.Concurrency}
		}),
		metrics.RegisterJobAges(n.jobAges),
		metrics.RegisterPebble(func() metrics.PebbleStats {
			m := n.cfg.Store.Metrics()
			return metrics.PebbleStats{DiskBytes: m.DiskSpaceUsage(), MemtableBytes: m.MemTable.Size, Compactions: m.Compact.Count, ReadAmp: m.ReadAmp()}
		}),
	)
}

func (n *Node) unregisterMetrics() {
	for _, f := range n.meters.unregister {
		f()
	}
	n.meters.unregister = nil
}

// jobAges is, per size bucket, the age of the oldest job of this node that
// has not ended. The active jobs are listed at each scrape (an index scan);
// the creation time and size of each is read from its log once, and kept
// while it runs.
func (n *Node) jobAges() map[metrics.Size]time.Duration {
	ids, err := n.cfg.Store.ActiveJobs()
	if err != nil {
		n.cfg.Log.Warn("metrics: list active jobs", "err", err)
		return nil
	}
	a := &n.meters.ages
	a.Lock()
	defer a.Unlock()
	known := make(map[string]jobAge, len(ids))
	oldest := map[metrics.Size]time.Duration{}
	now := n.cfg.Now()
	for _, id := range ids {
		ja, ok := a.known[id]
		if !ok {
			evs, err := n.cfg.Store.JobEvents(id)
			if err != nil || evs[0].GetCreated() == nil {
				continue
			}
			ja = jobAge{created: time.UnixMilli(evs[0].GetAtUnixMs()), size: metrics.SizeOf(int(evs[0].GetCreated().GetPages()))}
		}
		known[id] = ja
		oldest[ja.size] = max(oldest[ja.size], now.Sub(ja.created))
	}
	a.known = known
	return oldest
}

// checkLedgerEvery sets quire_ledger_discrepancy from a check of the ledger
// every interval until ctx ends (Start verified it before the node served).
// Only the ledger's node runs it.
func (n *Node) checkLedgerEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.checkLedger()
	}
}

// checkLedger verifies the ledger in the store while the LedgerActor goes
// on writing: a scan during which the ledger's sequence number moved may
// have seen half a movement, so it is not trusted and the scan is made
// again (up to ledgerCheckTries; the gauge keeps its value if none was
// quiet).
func (n *Node) checkLedger() {
	store := n.cfg.Store
	for range ledgerCheckTries {
		before, err := store.LedgerSeq()
		if err != nil {
			n.cfg.Log.Error("ledger check: read sequence", "err", err)
			return
		}
		problems, err := ledger.Discrepancies(store)
		if err != nil {
			n.cfg.Log.Error("ledger check", "err", err)
			return
		}
		if after, err := store.LedgerSeq(); err != nil || after != before {
			continue
		}
		metrics.SetLedgerDiscrepancy(len(problems))
		for _, p := range problems {
			n.cfg.Log.Error("ledger discrepancy", "problem", p)
		}
		return
	}
	n.cfg.Log.Debug("ledger check skipped: the ledger did not stay still", "tries", ledgerCheckTries)
}

// memberMetrics records, in quire_cluster_member_up, what a cluster event
// says of a peer.
func memberMetrics(ev cluster.Event) {
	switch ev.Kind {
	case cluster.EventJoined, cluster.EventUpdated, cluster.EventRestarted:
		metrics.MemberUp(ev.Member.Name)
	case cluster.EventFailed:
		metrics.MemberDown(ev.Member.Name)
	case cluster.EventLeft:
		metrics.MemberLeft(ev.Member.Name)
	}
}

// membersMetrics records the peers known before the events that follow.
func membersMetrics(members []cluster.Member, self string) {
	for _, m := range members {
		switch {
		case m.Name == self:
		case m.State == cluster.StateAlive:
			metrics.MemberUp(m.Name)
		case m.State == cluster.StateDead:
			metrics.MemberDown(m.Name)
		}
	}
}
