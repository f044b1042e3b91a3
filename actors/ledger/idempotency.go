package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// Idempotency-Key (IETF httpapi draft "The Idempotency-Key HTTP Header
// Field") is kept by the ledger, for the whole cluster: a key belongs to an
// account, and names at most one job until it expires. A request that
// carries a key is, in order:
//
//  1. received whole (its fingerprint includes the file's SHA-256);
//  2. claimed here (ClaimIdempotency): REPLAY when an unexpired record of the
//     key has the same fingerprint (the job it made is the answer), MISMATCH
//     when it has another, IN_PROGRESS while another request holds a claim
//     on the key, else CLAIMED;
//  3. once CLAIMED, made into a job whose ReserveCredits carries the
//     IdempotencyRecord: the record is written in the reservation's durable
//     write, and the reservation ends the claim (made or refused);
//  4. released (ReleaseIdempotency) if it fails before it reserves.
//
// Claims live in this actor's memory only; one that is neither used nor
// released lapses after ClaimTimeout (a node that died mid-request). Safety
// does not rest on claims: a reservation whose key already names another
// unexpired job is refused (CODE_CONFLICT), so a key never makes two jobs.
// Expired records count as absent, are overwritten when their key is used
// again, and are removed by a sweep that runs with the claims.

// ClaimTimeout is how long a claim holds a key without a reservation.
const ClaimTimeout = 2 * time.Minute

const (
	// idemSweepEvery is how often expired records are looked for.
	idemSweepEvery = 10 * time.Minute
	// idemSweepBatch bounds the records one sweep removes.
	idemSweepBatch = 10_000
)

type idemID struct{ account, key string }

// idemState is the actor's claims on keys.
type idemState struct {
	claims    map[idemID]time.Time // when the claim was made
	lastSweep time.Time
}

func (a *Actor) claimIdempotency(m *messages.ClaimIdempotency) any {
	if m.GetKey() == "" || len(m.GetRequestSha256()) == 0 {
		return codeError(messages.LedgerError_CODE_INVALID, "a claim needs a key and the request's fingerprint")
	}
	now := a.now()
	a.sweepIdempotency(now)
	reply := a.m.read(func() any { return a.m.idempotency(m.GetAccountId(), m.GetKey()) })
	var rec *messages.IdempotencyRecord
	switch r := reply.(type) {
	case *messages.LedgerError:
		return r
	case *messages.IdempotencyRecord:
		rec = r
	}
	if rec != nil && rec.GetExpiresUnixMs() > now.UnixMilli() {
		if bytes.Equal(rec.GetRequestSha256(), m.GetRequestSha256()) {
			return &messages.IdempotencyClaim{Outcome: messages.IdempotencyClaim_OUTCOME_REPLAY,
				JobId: rec.GetJobId(), OwnerNode: rec.GetOwnerNode()}
		}
		return &messages.IdempotencyClaim{Outcome: messages.IdempotencyClaim_OUTCOME_MISMATCH, JobId: rec.GetJobId()}
	}
	id := idemID{m.GetAccountId(), m.GetKey()}
	if at, ok := a.idem.claims[id]; ok && now.Sub(at) < ClaimTimeout {
		return &messages.IdempotencyClaim{Outcome: messages.IdempotencyClaim_OUTCOME_IN_PROGRESS}
	}
	if a.idem.claims == nil {
		a.idem.claims = map[idemID]time.Time{}
	}
	a.idem.claims[id] = now
	return &messages.IdempotencyClaim{Outcome: messages.IdempotencyClaim_OUTCOME_CLAIMED}
}

// idempotency is the account's record of key (nil: none), or the
// LedgerError of an unknown account or a failed read.
func (a *Machine) idempotency(account, key string) any {
	if _, ok := a.balances[account]; !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, account)
	}
	rec, err := a.store.Idempotency(account, key)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	return rec
}

// releaseIdempotency ends a claim whose request made no job; the answer is
// an empty IdempotencyClaim. A stored record is never touched.
func (a *Actor) releaseIdempotency(m *messages.ReleaseIdempotency) any {
	a.endClaim(m.GetAccountId(), m.GetKey())
	return &messages.IdempotencyClaim{}
}

// endClaim ends the claim on an account's key, if any.
func (a *Actor) endClaim(account, key string) {
	delete(a.idem.claims, idemID{account, key})
}

// checkIdempotency refuses a reservation when the key it carries already
// names another unexpired job.
func (a *Machine) checkIdempotency(m *messages.ReserveCredits) *messages.LedgerError {
	r := m.GetIdempotency()
	if r == nil {
		return nil
	}
	if r.GetAccountId() != m.GetAccountId() || r.GetKey() == "" || r.GetJobId() != m.GetJobId() {
		return codeError(messages.LedgerError_CODE_INVALID, "the idempotency record does not match its reservation")
	}
	rec, err := a.store.Idempotency(r.GetAccountId(), r.GetKey())
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	if rec.GetExpiresUnixMs() > a.nowMs() && rec.GetJobId() != m.GetJobId() {
		return codeError(messages.LedgerError_CODE_CONFLICT,
			fmt.Sprintf("the Idempotency-Key was used meanwhile by another request, which made job %s", rec.GetJobId()))
	}
	return nil
}

// sweepIdempotency drops lapsed claims and has expired records removed
// (ExpireIdempotency), at most every idemSweepEvery.
func (a *Actor) sweepIdempotency(now time.Time) {
	if now.Sub(a.idem.lastSweep) < idemSweepEvery {
		return
	}
	a.idem.lastSweep = now
	for id, at := range a.idem.claims {
		if now.Sub(at) >= ClaimTimeout {
			delete(a.idem.claims, id)
		}
	}
	reply := a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_ExpireIdempotency{
		ExpireIdempotency: &messages.ExpireIdempotency{Limit: idemSweepBatch}}})
	if e, ok := reply.(*messages.LedgerError); ok {
		a.log.Error("remove expired idempotency keys", "err", e.GetMessage())
	}
}

// expireIdempotency removes records that expired before the command's time.
func (a *Machine) expireIdempotency(m *messages.ExpireIdempotency) any {
	expired, err := a.store.ExpiredIdempotency(a.at, int(m.GetLimit()))
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	if len(expired) == 0 {
		return &messages.IdempotencyExpired{}
	}
	b := a.store.NewBatch()
	for _, r := range expired {
		b.DeleteIdempotency(r.GetAccountId(), r.GetKey())
	}
	if err := a.commit(b); err != nil {
		return err
	}
	a.log.Info("removed expired idempotency keys", "count", len(expired))
	return &messages.IdempotencyExpired{Removed: int32(len(expired))}
}
