package node

import (
	"context"

	"github.com/quirehq/quire/messages"
)

// Idempotency-Key: the ledger keeps the keys for the whole cluster (see
// actors/ledger/idempotency.go). The API claims a key once the request is
// received whole, submits with the key on CLAIMED (the reservation records
// it with the job, for IdempotencyTTL), and releases it when the request
// fails before it reserves.

// ClaimIdempotency claims an account's key for the request whose fingerprint
// is sum; the outcome says whether to go on (CLAIMED), answer with the job the
// key made (REPLAY), or refuse (IN_PROGRESS, MISMATCH).
func (n *Node) ClaimIdempotency(ctx context.Context, account, key string, sum []byte) (*messages.IdempotencyClaim, error) {
	return n.ledger.ClaimIdempotency(ctx, &messages.ClaimIdempotency{AccountId: account, Key: key, RequestSha256: sum})
}

// ReleaseIdempotency ends the claim of a request that made no job, so that a
// retry with the same key is not answered 409.
func (n *Node) ReleaseIdempotency(ctx context.Context, account, key string) error {
	return n.ledger.ReleaseIdempotency(ctx, account, key)
}

// idempotencyRecord is what the reservation of s's job records of its key,
// or nil without one.
func (n *Node) idempotencyRecord(s Submission, jobID string) *messages.IdempotencyRecord {
	if s.IdempotencyKey == "" {
		return nil
	}
	return &messages.IdempotencyRecord{
		AccountId: s.Account.GetId(), Key: s.IdempotencyKey, RequestSha256: s.RequestSHA256, JobId: jobID,
		ExpiresUnixMs: n.cfg.Now().Add(n.cfg.IdempotencyTTL).UnixMilli(), OwnerNode: n.cfg.Name,
	}
}
