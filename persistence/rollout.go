package persistence

import "github.com/quirehq/quire/messages"

// rolloutKey holds the cluster's RolloutPolicy, in the store of the node that
// holds the ledger (key space: meta/rollout, beside meta/ledger_seq).
var rolloutKey = []byte("meta/rollout")

// Rollout loads the rollout policy, or ErrNotFound when it was never set.
func (s *Store) Rollout() (*messages.RolloutPolicy, error) {
	p := &messages.RolloutPolicy{}
	return p, s.getProto(rolloutKey, p)
}

// PutRollout stores the rollout policy, replacing the one before.
func (b *Batch) PutRollout(p *messages.RolloutPolicy) {
	b.setProto(rolloutKey, p)
}
