package node

import (
	"context"

	"github.com/quirehq/quire/messages"
)

// NewKey is an API key just created, with the only copy of the key.
type NewKey struct {
	// Key is the API key itself; it is not stored anywhere.
	Key   string
	KeyID string
	// Record is the key as the ledger stores it (its hash, created time).
	Record *messages.APIKey
	// Revoked are the keys revoked with it (CreateKey with revokeOthers).
	Revoked []*messages.APIKey
}

// CreateKey gives an account a fresh API key, returned once and stored only
// as its SHA-256. With revokeOthers, every other live key of the account is
// revoked in the same durable write (rotation). An unknown account is
// ledger.ErrUnknownAccount.
func (n *Node) CreateKey(ctx context.Context, account string, revokeOthers bool) (*NewKey, error) {
	key, keyID, sum, err := newAPIKey()
	if err != nil {
		return nil, err
	}
	r, err := n.ledger.CreateKey(ctx, &messages.CreateKey{AccountId: account, KeySha256: sum, KeyId: keyID, RevokeOthers: revokeOthers})
	if err != nil {
		return nil, err
	}
	return &NewKey{Key: key, KeyID: keyID, Record: r.GetKey(), Revoked: r.GetRevoked()}, nil
}

// RevokeKey revokes one key of an account; revoking it again is not an
// error. From then on the key is refused on every node: nodes other than the
// ledger's ask the ledger at each request, and keep what it accepted only to
// serve while it cannot be reached. An account or key id that is not known
// is ledger.ErrUnknownAccount.
func (n *Node) RevokeKey(ctx context.Context, account, keyID string) (*messages.APIKey, error) {
	return n.ledger.RevokeKey(ctx, account, keyID)
}

// Keys lists an account's keys, revoked ones included.
func (n *Node) Keys(ctx context.Context, account string) ([]*messages.APIKey, error) {
	return n.ledger.Keys(ctx, account)
}
