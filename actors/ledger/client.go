package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quirehq/quire/messages"
)

// Client asks the LedgerActor and turns its answers into Go values and errors.
type Client struct {
	root    *actor.RootContext
	resolve func() (*actor.PID, error)
	timeout time.Duration
	// local, when set, answers reads (balances, accounts, keys, the
	// policy) from this node's replica when no leader could be asked in
	// the whole time: committed state, possibly behind the leader's.
	local *Machine
}

// WithLocalReads makes reads fall back to m (this node's replica) when no
// leader can be asked.
func (c *Client) WithLocalReads(m *Machine) *Client {
	c.local = m
	return c
}

// isRead reports whether msg only reads the ledger.
func isRead(msg any) bool {
	switch msg.(type) {
	case *messages.GetBalance, *messages.Authenticate, *messages.GetAccount, *messages.ListKeys,
		*messages.ListAccounts, *messages.GetRollout:
		return true
	}
	return false
}

// NewClient talks to the ledger at pid.
func NewClient(root *actor.RootContext, pid *actor.PID, timeout time.Duration) *Client {
	return &Client{root: root, resolve: func() (*actor.PID, error) { return pid, nil }, timeout: timeout}
}

// NewRemoteClient talks to a ledger that resolve finds at each request (it
// lives on another node, whose address may change when it restarts). An error
// from resolve, which should wrap ErrUnavailable, is the request's answer.
func NewRemoteClient(root *actor.RootContext, resolve func() (*actor.PID, error), timeout time.Duration) *Client {
	return &Client{root: root, resolve: resolve, timeout: timeout}
}

// PID is the ledger's address, or nil when it cannot be found now.
func (c *Client) PID() *actor.PID {
	pid, _ := c.resolve()
	return pid
}

// ask asks the ledger and waits for its answer. While the ledger cannot be
// found or answers that it is not the leader (an election), it asks again,
// the ledger found anew, until the timeout: every ledger request is safe to
// repeat (each is idempotent by its job, grant, account or key id).
func ask[T any](ctx context.Context, c *Client, msg any) (T, error) {
	var zero T
	timeout := c.timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	deadline := time.Now().Add(timeout)
	wait := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		left := time.Until(deadline)
		if left <= 0 {
			return zero, fmt.Errorf("%w: %v", ErrUnavailable, context.DeadlineExceeded)
		}
		res, err := askOnce(c, msg, left)
		if err == nil {
			switch r := res.(type) {
			case *messages.LedgerError:
				if r.GetCode() != messages.LedgerError_CODE_UNAVAILABLE {
					return zero, asError(r)
				}
				err = asError(r)
			case T:
				return r, nil
			default:
				return zero, fmt.Errorf("%w: unexpected reply %T", ErrInvalid, res)
			}
		}
		if !errors.Is(err, errRetry) && !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return zero, err
		}
		if time.Until(deadline) < wait || errors.Is(err, ErrNoLeaderSoon) {
			if c.local != nil && isRead(msg) {
				// No leader to ask: the replica here has committed state.
				switch r := c.local.Read(msg).(type) {
				case *messages.LedgerError:
					return zero, asError(r)
				case T:
					return r, nil
				}
			}
			return zero, err
		}
		select {
		case <-ctx.Done():
			return zero, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// errRetry marks an error after which asking again may succeed.
var errRetry = errors.New("ledger: retry")

func askOnce(c *Client, msg any, timeout time.Duration) (any, error) {
	pid, err := c.resolve()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errRetry, err)
	}
	res, err := c.root.RequestFuture(pid, msg, timeout).Result()
	if err != nil {
		// A timeout, a dead letter, a lost connection: the request may or may
		// not have been applied; it is not asked again (the time is up, or
		// the node is gone: the caller decides).
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return res, nil
}

// CreateAccount opens an account with initial credits and its first key hash.
func (c *Client) CreateAccount(ctx context.Context, m *messages.CreateAccount) (*messages.AccountCreated, error) {
	return ask[*messages.AccountCreated](ctx, c, m)
}

// Grant adds credits to an account.
func (c *Client) Grant(ctx context.Context, m *messages.GrantCredits) (*messages.CreditsGranted, error) {
	return ask[*messages.CreditsGranted](ctx, c, m)
}

// Reserve reserves a job's credits and records its first events in one durable write.
func (c *Client) Reserve(ctx context.Context, m *messages.ReserveCredits) (*messages.CreditsReserved, error) {
	return ask[*messages.CreditsReserved](ctx, c, m)
}

// Settle charges and refunds a finished job and records its JobFinished event.
func (c *Client) Settle(ctx context.Context, m *messages.SettleCredits) (*messages.CreditsSettled, error) {
	return ask[*messages.CreditsSettled](ctx, c, m)
}

// Authenticate finds the account of the API key whose SHA-256 is sum.
func (c *Client) Authenticate(ctx context.Context, sum []byte) (*messages.Account, error) {
	r, err := ask[*messages.AccountReply](ctx, c, &messages.Authenticate{KeySha256: sum})
	return r.GetAccount(), err
}

// Account reads an account.
func (c *Client) Account(ctx context.Context, id string) (*messages.Account, error) {
	r, err := ask[*messages.AccountReply](ctx, c, &messages.GetAccount{AccountId: id})
	return r.GetAccount(), err
}

// Accounts lists at most limit accounts numbered above after, by number,
// with their balances.
func (c *Client) Accounts(ctx context.Context, after int64, limit int) (*messages.AccountList, error) {
	return ask[*messages.AccountList](ctx, c, &messages.ListAccounts{AfterNumber: after, Limit: int32(limit)})
}

// Balance reads an account's balance and its most recent entries.
func (c *Client) Balance(ctx context.Context, account string, recent int) (*messages.BalanceReply, error) {
	return ask[*messages.BalanceReply](ctx, c, &messages.GetBalance{AccountId: account, Recent: int32(recent)})
}

// Rollout reads the cluster's rollout policy (the defaults, version 0, when
// none was ever set).
func (c *Client) Rollout(ctx context.Context) (*messages.RolloutPolicy, error) {
	return ask[*messages.RolloutPolicy](ctx, c, &messages.GetRollout{})
}

// SetRollout replaces the cluster's rollout policy; the answer carries its new
// version.
func (c *Client) SetRollout(ctx context.Context, p *messages.RolloutPolicy) (*messages.RolloutPolicy, error) {
	return ask[*messages.RolloutPolicy](ctx, c, &messages.SetRollout{Policy: p})
}

// CreateKey adds a key (by its hash) to an account; with RevokeOthers, the
// account's other live keys are revoked in the same write.
func (c *Client) CreateKey(ctx context.Context, m *messages.CreateKey) (*messages.KeyReply, error) {
	return ask[*messages.KeyReply](ctx, c, m)
}

// RevokeKey revokes one key of an account (again: no error). A key id the
// account does not have is ErrUnknownAccount.
func (c *Client) RevokeKey(ctx context.Context, account, keyID string) (*messages.APIKey, error) {
	r, err := ask[*messages.KeyReply](ctx, c, &messages.RevokeKey{AccountId: account, KeyId: keyID})
	return r.GetKey(), err
}

// Keys lists an account's keys, revoked ones included (hashes, never keys).
func (c *Client) Keys(ctx context.Context, account string) ([]*messages.APIKey, error) {
	r, err := ask[*messages.KeyList](ctx, c, &messages.ListKeys{AccountId: account})
	return r.GetKeys(), err
}

// SetLimits replaces an account's own limits and answers the account.
func (c *Client) SetLimits(ctx context.Context, account string, l *messages.AccountLimits) (*messages.Account, error) {
	r, err := ask[*messages.AccountReply](ctx, c, &messages.SetLimits{AccountId: account, Limits: l})
	return r.GetAccount(), err
}

// ClaimIdempotency starts a request that carries an Idempotency-Key (see
// idempotency.go): the outcome says whether to go on, replay or refuse.
func (c *Client) ClaimIdempotency(ctx context.Context, m *messages.ClaimIdempotency) (*messages.IdempotencyClaim, error) {
	return ask[*messages.IdempotencyClaim](ctx, c, m)
}

// ReleaseIdempotency ends the claim of a request that made no job.
func (c *Client) ReleaseIdempotency(ctx context.Context, account, key string) error {
	_, err := ask[*messages.IdempotencyClaim](ctx, c, &messages.ReleaseIdempotency{AccountId: account, Key: key})
	return err
}
