package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// keyPrefix starts every API key, so that a leaked key is easy to recognise.
const keyPrefix = "qk_"

// NewAccount is an account just created, with the only copy of its API key.
type NewAccount struct {
	Account *messages.Account
	Balance *messages.Balance
	APIKey  string
	KeyID   string
}

// CreateAccount opens an account with initial credits and a fresh API key.
// The key is returned once and stored only as its SHA-256.
func (n *Node) CreateAccount(ctx context.Context, name string, credits int64) (*NewAccount, error) {
	if strings.TrimSpace(name) == "" {
		return nil, fmt.Errorf("%w: an account needs a name", ErrInvalidRequest)
	}
	if credits < 0 {
		return nil, fmt.Errorf("%w: credits must not be negative", ErrInvalidRequest)
	}
	key, keyID, sum, err := newAPIKey()
	if err != nil {
		return nil, err
	}
	// The id is made here, so that asking again (a new leader) cannot make
	// a second account.
	res, err := n.ledger.CreateAccount(ctx, &messages.CreateAccount{Name: name, Credits: credits, KeySha256: sum, KeyId: keyID,
		AccountId: "acct_" + uuid.NewString()})
	if err != nil {
		return nil, err
	}
	return &NewAccount{Account: res.GetAccount(), Balance: res.GetBalance(), APIKey: key, KeyID: keyID}, nil
}

// newAPIKey draws a key of 192 random bits.
func newAPIKey() (key, keyID string, sum []byte, err error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", nil, fmt.Errorf("node: draw API key: %w", err)
	}
	key = keyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := sha256.Sum256([]byte(key))
	return key, "key_" + hex.EncodeToString(h[:6]), h[:], nil
}

// Authenticate finds the account an API key belongs to. The key is looked up
// by its SHA-256, so no comparison ever touches the key itself, and the
// stored hash is then compared in constant time; a revoked key is refused.
// On a node that does not hold the ledger, the ledger's node is asked.
func (n *Node) Authenticate(ctx context.Context, key string) (*messages.Account, error) {
	if !strings.HasPrefix(key, keyPrefix) || len(key) > 128 {
		return nil, ErrUnauthorized
	}
	h := sha256.Sum256([]byte(key))
	if !n.HoldsLedger() {
		return n.authenticateRemote(ctx, h)
	}
	rec, err := n.cfg.Store.APIKeyByHash(h[:])
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !ledger.KeyMatches(rec, h[:])) {
		return nil, ErrUnauthorized
	}
	if err != nil {
		return nil, err
	}
	return n.cfg.Store.Account(rec.GetAccountId())
}

// Account loads an account by id.
func (n *Node) Account(ctx context.Context, id string) (*messages.Account, error) {
	var a *messages.Account
	var err error
	if n.HoldsLedger() {
		a, err = n.cfg.Store.AccountRef(id)
	} else {
		a, err = n.ledger.Account(ctx, id)
	}
	if errors.Is(err, persistence.ErrNotFound) || errors.Is(err, ledger.ErrUnknownAccount) {
		return nil, fmt.Errorf("%w: no account %s", ErrInvalidRequest, id)
	}
	return a, err
}

// Accounts lists at most limit accounts numbered above after, by number,
// with their balances; the ledger's node answers, wherever it is.
func (n *Node) Accounts(ctx context.Context, after int64, limit int) (*messages.AccountList, error) {
	return n.ledger.Accounts(ctx, after, limit)
}

// Grant adds credits to an account. A grant id makes the grant idempotent;
// without one, the grant gets one here, so that the ledger asked again
// (a new leader) does not grant twice.
func (n *Node) Grant(ctx context.Context, account string, amount int64, reason, grantID string) (*messages.CreditsGranted, error) {
	if grantID == "" {
		grantID = "auto_" + uuid.NewString()
	}
	return n.ledger.Grant(ctx, &messages.GrantCredits{AccountId: account, Amount: amount, Reason: reason, GrantId: grantID})
}

// Credits reads an account's balance and its most recent ledger entries.
func (n *Node) Credits(ctx context.Context, account string, recent int) (*messages.BalanceReply, error) {
	return n.ledger.Balance(ctx, account, recent)
}
