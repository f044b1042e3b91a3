package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
)

// The rollout policy decides which path the legacy entry (POST /v1/process)
// takes and whether the async path (POST /v1/jobs) is open at all:
//
//   - async_enabled false: every request is sync, POST /v1/jobs is refused;
//   - else an upload larger than size_threshold_mb MiB is async;
//   - else async when account_number % 100 < percentage;
//   - else sync.
//
// The cluster has one policy, kept by the LedgerActor in its node's store
// (durable, versioned). Every node keeps a copy in memory that it routes by:
// read from the ledger at start and every rolloutRefresh after, so a change
// made on any node is obeyed by all of them within about that long. While the
// ledger cannot be reached, a node keeps the last policy it read (the
// defaults, ledger.DefaultRollout, if it never read one).

// Routes: the path a request or a job takes.
const (
	RouteAsync = "async"
	RouteSync  = "sync"
)

// rolloutRefresh is how often a node reads the policy from the ledger.
const rolloutRefresh = time.Second

// rolloutState is the node's copy of the cluster's policy.
type rolloutState struct {
	// sync orders reads from and writes to the ledger, so that the answer
	// to an older request never replaces a newer policy.
	sync sync.Mutex
	mu   struct {
		sync.Mutex
		policy *messages.RolloutPolicy // nil until read once
	}
}

func (r *rolloutState) get() *messages.RolloutPolicy {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.policy
}

// put replaces the copy; it reports the policy it replaced.
func (r *rolloutState) put(p *messages.RolloutPolicy) (old *messages.RolloutPolicy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, r.mu.policy = r.mu.policy, p
	return old
}

// startRollout reads the policy once (so that the node routes by the
// cluster's policy from its first request when the ledger answers), then
// keeps reading it every rolloutRefresh until ctx ends.
func (n *Node) startRollout(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := n.refreshRollout(fctx); err != nil {
		n.cfg.Log.Warn("cannot read the rollout policy yet: routing by the defaults until the ledger answers", "err", err)
	}
	cancel()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(rolloutRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			fctx, cancel := context.WithTimeout(ctx, rolloutRefresh)
			if err := n.refreshRollout(fctx); err != nil && ctx.Err() == nil {
				n.cfg.Log.Debug("read the rollout policy: keeping the last one", "err", err)
			}
			cancel()
		}
	}()
}

// refreshRollout reads the policy from the ledger into the node's copy.
func (n *Node) refreshRollout(ctx context.Context) error {
	n.rollout.sync.Lock()
	defer n.rollout.sync.Unlock()
	p, err := n.ledger.Rollout(ctx)
	if err != nil {
		return err
	}
	n.adoptRollout(p)
	return nil
}

// adoptRollout makes p the node's copy; a change is logged.
func (n *Node) adoptRollout(p *messages.RolloutPolicy) {
	old := n.rollout.put(p)
	if old == nil || old.GetVersion() != p.GetVersion() {
		n.cfg.Log.Info("rollout policy in force", "version", p.GetVersion(), "async_enabled", p.GetAsyncEnabled(),
			"percentage", p.GetPercentage(), "size_threshold_mb", p.GetSizeThresholdMb())
	}
}

// Rollout is the policy this node routes by now: the cluster's, as last read
// from the ledger.
func (n *Node) Rollout() *messages.RolloutPolicy {
	p := n.rollout.get()
	if p == nil {
		return ledger.DefaultRollout()
	}
	return proto.Clone(p).(*messages.RolloutPolicy)
}

// SetRollout replaces the cluster's policy (its version and time are set by
// the ledger) and returns it; this node obeys it at once, the others within
// rolloutRefresh. A percentage outside 0..100 or a negative size threshold is
// ErrInvalidRequest; an unreachable ledger, ledger.ErrUnavailable.
func (n *Node) SetRollout(ctx context.Context, p *messages.RolloutPolicy) (*messages.RolloutPolicy, error) {
	if err := ledger.ValidateRollout(p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	n.rollout.sync.Lock()
	defer n.rollout.sync.Unlock()
	set, err := n.ledger.SetRollout(ctx, &messages.RolloutPolicy{
		AsyncEnabled: p.GetAsyncEnabled(), Percentage: p.GetPercentage(), SizeThresholdMb: p.GetSizeThresholdMb(),
	})
	if errors.Is(err, ledger.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if err != nil {
		return nil, err
	}
	n.adoptRollout(set)
	return proto.Clone(set).(*messages.RolloutPolicy), nil
}

// SetAsyncEnabled turns the async path on or off in the cluster's policy,
// leaving the rest of it as it is; it writes nothing when the policy already
// says so. It reports whether it changed the policy.
func (n *Node) SetAsyncEnabled(ctx context.Context, on bool) (*messages.RolloutPolicy, bool, error) {
	cur, err := n.ledger.Rollout(ctx)
	if err != nil {
		return nil, false, err
	}
	if cur.GetAsyncEnabled() == on {
		n.rollout.sync.Lock()
		n.adoptRollout(cur)
		n.rollout.sync.Unlock()
		return cur, false, nil
	}
	next := proto.Clone(cur).(*messages.RolloutPolicy)
	next.AsyncEnabled = on
	set, err := n.SetRollout(ctx, next)
	return set, err == nil, err
}

// Route is the path the policy gives an upload of uploadBytes by the
// account numbered accountNumber: RouteAsync or RouteSync.
func (n *Node) Route(accountNumber, uploadBytes int64) string {
	return RouteFor(n.Rollout(), accountNumber, uploadBytes)
}

// RouteFor is the path p gives an upload of uploadBytes by the account
// numbered accountNumber. Switched off (async_enabled false), everything is
// sync, large uploads too.
func RouteFor(p *messages.RolloutPolicy, accountNumber, uploadBytes int64) string {
	if !p.GetAsyncEnabled() {
		return RouteSync
	}
	if uploadBytes > int64(p.GetSizeThresholdMb())<<20 {
		return RouteAsync
	}
	cohort := accountNumber % 100
	if cohort < 0 {
		cohort += 100
	}
	if cohort < int64(p.GetPercentage()) {
		return RouteAsync
	}
	return RouteSync
}
