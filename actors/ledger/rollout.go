package ledger

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// The LedgerActor also keeps the cluster's rollout policy: it is one value
// the whole cluster must agree on, and the ledger's node is the one place
// every node already asks. It is stored under meta/rollout in that node's
// store, durably (Sync) before SetRollout is answered.

// The policy until an admin sets one: every account on the async path, and
// uploads above 10 MiB async whatever the percentage.
const (
	DefaultRolloutAsyncEnabled = true
	DefaultRolloutPercentage   = 100
	DefaultRolloutSizeMB       = 10
)

// DefaultRollout is the policy of a cluster where none was ever set
// (version 0).
func DefaultRollout() *messages.RolloutPolicy {
	return &messages.RolloutPolicy{
		AsyncEnabled:    DefaultRolloutAsyncEnabled,
		Percentage:      DefaultRolloutPercentage,
		SizeThresholdMb: DefaultRolloutSizeMB,
	}
}

// ValidateRollout says what is wrong with a policy an admin asks for, or nil.
func ValidateRollout(p *messages.RolloutPolicy) error {
	var errs []error
	if p.GetPercentage() < 0 || p.GetPercentage() > 100 {
		errs = append(errs, fmt.Errorf("percentage must be between 0 and 100 (got %d)", p.GetPercentage()))
	}
	if p.GetSizeThresholdMb() < 0 {
		errs = append(errs, fmt.Errorf("size_threshold_mb must not be negative (got %d)", p.GetSizeThresholdMb()))
	}
	return errors.Join(errs...)
}

func (a *Machine) rollout() any {
	p, err := a.store.Rollout()
	if errors.Is(err, persistence.ErrNotFound) {
		return DefaultRollout()
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	return p
}

// setRollout replaces the policy; the version grows by one with each change
// and the time is the ledger's.
func (a *Machine) setRollout(m *messages.SetRollout) any {
	if m.GetPolicy() == nil {
		return codeError(messages.LedgerError_CODE_INVALID, "no policy to set")
	}
	if err := ValidateRollout(m.GetPolicy()); err != nil {
		return codeError(messages.LedgerError_CODE_INVALID, err.Error())
	}
	reply := a.rollout()
	cur, ok := reply.(*messages.RolloutPolicy)
	if !ok {
		return reply // the storage error
	}
	next := proto.Clone(m.GetPolicy()).(*messages.RolloutPolicy)
	next.Version = cur.GetVersion() + 1
	next.UpdatedUnixMs = a.nowMs()
	b := a.store.NewBatch()
	b.PutRollout(next)
	if err := a.commit(b); err != nil {
		return err
	}
	a.log.Info("rollout policy set", "version", next.GetVersion(), "async_enabled", next.GetAsyncEnabled(),
		"percentage", next.GetPercentage(), "size_threshold_mb", next.GetSizeThresholdMb())
	return next
}
