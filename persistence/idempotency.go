package persistence

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
)

// Idempotency records (idem/<account>/<key>, see keys.go) are written by the
// ledger with the reservation of the job they made, and read back when a
// request with the same Idempotency-Key arrives. An expired record means
// nothing: it is overwritten when its key is used again, and removed by
// the ledger's sweep (ExpiredIdempotency, DeleteIdempotency).

var idemPrefix = []byte("idem/")

// DeleteIdempotency removes the record of an account's idempotency key.
func (b *Batch) DeleteIdempotency(account, key string) {
	b.del(idemKey(account, key))
}

// ExpiredIdempotency lists up to limit records (0: all) whose expiry is at or
// before nowMs.
func (s *Store) ExpiredIdempotency(nowMs int64, limit int) ([]*messages.IdempotencyRecord, error) {
	var out []*messages.IdempotencyRecord
	err := s.scan(idemPrefix, false, func(k, v []byte) (bool, error) {
		r := &messages.IdempotencyRecord{}
		if err := proto.Unmarshal(v, r); err != nil {
			return false, fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
		}
		if r.GetExpiresUnixMs() <= nowMs {
			out = append(out, r)
		}
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}
