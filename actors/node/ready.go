package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/cluster"
)

// NotReadyError says every reason why a node cannot take work now.
type NotReadyError struct {
	Reasons []error
}

func (e *NotReadyError) Error() string {
	msgs := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		msgs[i] = r.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e *NotReadyError) Unwrap() []error { return e.Reasons }

// Ready reports why the node cannot take work (a *NotReadyError with every
// reason), or nil: its store must be readable and have room for new work,
// it must have joined the cluster it was told to join, the ledger must
// answer, and a PDF reader instance must be obtainable.
func (n *Node) Ready(ctx context.Context) error {
	var reasons []error
	if _, err := n.cfg.Store.LedgerSeq(); err != nil {
		reasons = append(reasons, fmt.Errorf("store not readable: %w", err))
	}
	if err := n.cfg.Store.CheckSpace(); err != nil {
		reasons = append(reasons, fmt.Errorf("disk nearly full: %w", err))
	}
	if err := n.joined(); err != nil {
		reasons = append(reasons, err)
	}
	if _, err := n.resolveLedger(); err != nil {
		reasons = append(reasons, fmt.Errorf("ledger not answering: %w", err))
	} else if _, err := n.ledger.Balance(ctx, "readiness-probe", 0); err != nil && !errors.Is(err, ledger.ErrUnknownAccount) {
		reasons = append(reasons, fmt.Errorf("ledger (Raft leader %s) not answering: %w", n.LedgerNode(), err))
	}
	if err := n.cfg.Engine.Healthy(ctx); err != nil {
		reasons = append(reasons, fmt.Errorf("PDF reader not available: %w", err))
	}
	if len(reasons) > 0 {
		return &NotReadyError{Reasons: reasons}
	}
	return nil
}

// joined says whether a node given members to join (--join) has joined
// them. A node that sees no other member alive has not, unless it holds the
// ledger: the first node of a cluster starts alone (the others are not up
// yet) and can take work alone, and the cluster package keeps trying its
// seeds meanwhile. A node without the ledger cannot work alone.
func (n *Node) joined() error {
	if n.cluster == nil || n.HoldsLedger() {
		return nil
	}
	var seeds []string
	for _, s := range n.cfg.Join {
		if s != n.cfg.GossipAddr && s != n.cluster.GossipAddr() {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil
	}
	for _, m := range n.cluster.Members() {
		if m.Name != n.cfg.Name && m.State == cluster.StateAlive {
			return nil
		}
	}
	return fmt.Errorf("not joined to the cluster: no other member is alive (--join %s)", strings.Join(seeds, ","))
}
