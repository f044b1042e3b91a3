package persistence

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/messages"
)

func apiKey(account, id string, revoked bool) *messages.APIKey {
	sum := sha256.Sum256([]byte("qk_" + account + "/" + id))
	k := &messages.APIKey{KeyId: id, AccountId: account, Sha256: sum[:], CreatedUnixMs: 10}
	if revoked {
		k.Revoked, k.RevokedUnixMs = true, 20
	}
	return k
}

func TestAccountKeysIndex(t *testing.T) {
	s := openStore(t)
	a2, a1 := apiKey("acct_1", "key_b", false), apiKey("acct_1", "key_a", true)
	other := apiKey("acct_10", "key_a", false) // an account whose id extends acct_1's
	b := s.NewBatch()
	b.PutAccountKey(a2)
	b.PutAccountKey(a1)
	b.PutAccountKey(other)
	must(t, b.Commit())

	check := func(s *Store) {
		t.Helper()
		got, err := s.AccountKeys("acct_1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*messages.APIKey{a1, a2}, got, protocmp.Transform()); diff != "" {
			t.Errorf("AccountKeys(acct_1) (-want +got):\n%s", diff)
		}
		k, err := s.AccountKey("acct_10", "key_a")
		if err != nil || !cmp.Equal(other, k, protocmp.Transform()) {
			t.Errorf("AccountKey(acct_10, key_a) = %v, %v", k, err)
		}
		if _, err := s.AccountKey("acct_1", "key_c"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AccountKey(unknown id) error = %v, want ErrNotFound", err)
		}
		if _, err := s.AccountKey("acct_2", "key_a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AccountKey(account without keys) error = %v, want ErrNotFound", err)
		}
		// The hash lookup of authentication sees the same records.
		byHash, err := s.APIKeyByHash(a1.GetSha256())
		if err != nil || !cmp.Equal(a1, byHash, protocmp.Transform()) {
			t.Errorf("APIKeyByHash = %v, %v", byHash, err)
		}
		if keys, err := s.AccountKeys("acct_2"); err != nil || len(keys) != 0 {
			t.Errorf("AccountKeys(no keys) = %v, %v", keys, err)
		}
	}
	check(s)
	check(reopen(t, s))
}

// Keys stored before the index existed (PutAPIKey alone) are still found by
// account, until the account has an indexed key.
func TestAccountKeysUnindexed(t *testing.T) {
	s := openStore(t)
	old2, old1 := apiKey("acct_1", "key_2", false), apiKey("acct_1", "key_1", false)
	b := s.NewBatch()
	b.PutAPIKey(old2)
	b.PutAPIKey(old1)
	b.PutAPIKey(apiKey("acct_2", "key_1", false))
	must(t, b.Commit())

	got, err := s.AccountKeys("acct_1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*messages.APIKey{old1, old2}, got, protocmp.Transform()); diff != "" {
		t.Errorf("AccountKeys of unindexed keys (-want +got):\n%s", diff)
	}
	k, err := s.AccountKey("acct_1", "key_2")
	if err != nil || !cmp.Equal(old2, k, protocmp.Transform()) {
		t.Errorf("AccountKey(unindexed) = %v, %v", k, err)
	}
}

func TestPutAccountKeyNeedsIDs(t *testing.T) {
	s := openStore(t)
	for _, k := range []*messages.APIKey{
		{AccountId: "acct_1", Sha256: []byte{1}},
		{KeyId: "key_1", Sha256: []byte{1}},
		{KeyId: "key_1", AccountId: "acct_1"},
	} {
		b := s.NewBatch()
		b.PutAccountKey(k)
		if err := b.Commit(); err == nil {
			t.Errorf("PutAccountKey(%v) committed", k)
		}
	}
}
