package node_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/actors/node"
)

// TestKeysRotateAndRevoke: keys made by the node are random, work at once,
// and stop working when revoked or rotated away; an unknown account or a
// key id of another account is ledger.ErrUnknownAccount.
func TestKeysRotateAndRevoke(t *testing.T) {
	e := newEnv(t, nil)
	n := e.start(nil)
	ctx := t.Context()
	a, err := n.CreateAccount(ctx, "alice", 1)
	if err != nil {
		t.Fatal(err)
	}
	acct := a.Account.GetId()
	auth := func(key string) error {
		t.Helper()
		got, err := n.Authenticate(ctx, key)
		if err == nil && got.GetId() != acct {
			t.Fatalf("Authenticate gave account %s, want %s", got.GetId(), acct)
		}
		return err
	}

	second, err := n.CreateKey(ctx, acct, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(second.Key, "qk_") || len(second.Key) < 3+22 || second.Key == a.APIKey || second.KeyID == a.KeyID {
		t.Fatalf("CreateKey = %+v, want a fresh qk_ key of at least 128 bits", second)
	}
	if sum := sha256.Sum256([]byte(second.Key)); second.Record.GetKeyId() != second.KeyID || !bytes.Equal(second.Record.GetSha256(), sum[:]) {
		t.Errorf("stored record %v, want the key's id and SHA-256", second.Record)
	}
	if err := errors.Join(auth(a.APIKey), auth(second.Key)); err != nil {
		t.Fatalf("both keys should work: %v", err)
	}

	if _, err := n.RevokeKey(ctx, acct, second.KeyID); err != nil {
		t.Fatal(err)
	}
	if err := auth(second.Key); !errors.Is(err, node.ErrUnauthorized) {
		t.Errorf("revoked key: %v, want ErrUnauthorized", err)
	}
	if err := auth(a.APIKey); err != nil {
		t.Errorf("first key after revoking the second: %v", err)
	}

	third, err := n.CreateKey(ctx, acct, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Revoked) != 1 || third.Revoked[0].GetKeyId() != a.KeyID {
		t.Errorf("rotation revoked %v, want only the first key %s", third.Revoked, a.KeyID)
	}
	if err := auth(a.APIKey); !errors.Is(err, node.ErrUnauthorized) {
		t.Errorf("key rotated away: %v, want ErrUnauthorized", err)
	}
	if err := auth(third.Key); err != nil {
		t.Errorf("new key: %v", err)
	}
	keys, err := n.Keys(ctx, acct)
	if err != nil || len(keys) != 3 {
		t.Fatalf("Keys = %v, %v; want 3", keys, err)
	}

	bob, err := n.CreateAccount(ctx, "bob", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ account, key string }{{acct, bob.KeyID}, {"acct_none", third.KeyID}} {
		if _, err := n.RevokeKey(ctx, tc.account, tc.key); !errors.Is(err, ledger.ErrUnknownAccount) {
			t.Errorf("RevokeKey(%s, %s): %v, want ledger.ErrUnknownAccount", tc.account, tc.key, err)
		}
	}
	if _, err := n.Authenticate(ctx, bob.APIKey); err != nil {
		t.Errorf("bob's key after a refused revocation: %v", err)
	}
	if _, err := n.CreateKey(ctx, "acct_none", false); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Errorf("CreateKey(unknown account): %v, want ledger.ErrUnknownAccount", err)
	}
}
