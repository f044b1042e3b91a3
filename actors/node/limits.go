package node

import (
	"context"
	"fmt"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
)

// SetLimits replaces an account's own limits (zero fields: the node
// defaults). The ledger keeps them on the account: every node sees them at
// the account's next request.
func (n *Node) SetLimits(ctx context.Context, account string, l *messages.AccountLimits) (*messages.Account, error) {
	if err := ledger.ValidateLimits(l); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return n.ledger.SetLimits(ctx, account, l)
}
