package ledger_test

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
)

// harnessNowMs is the harness's clock.
const harnessNowMs = 1_700_000_000_000

func keySum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func (h *harness) createKey(account, id string, revokeOthers bool) *messages.KeyReply {
	h.tb.Helper()
	r, err := h.client.CreateKey(h.tb.Context(), &messages.CreateKey{AccountId: account, KeyId: id, KeySha256: keySum(id), RevokeOthers: revokeOthers})
	if err != nil {
		h.tb.Fatalf("CreateKey(%s, %s): %v", account, id, err)
	}
	return r
}

func (h *harness) keys(account string) []*messages.APIKey {
	h.tb.Helper()
	keys, err := h.client.Keys(h.tb.Context(), account)
	if err != nil {
		h.tb.Fatalf("Keys(%s): %v", account, err)
	}
	return keys
}

func (h *harness) wantAuth(key string, account string) {
	h.tb.Helper()
	got, err := h.client.Authenticate(h.tb.Context(), keySum(key))
	switch {
	case account == "" && !errors.Is(err, ledger.ErrUnauthorized):
		h.tb.Errorf("Authenticate(%s) = %v, %v; want ErrUnauthorized", key, got, err)
	case account != "" && (err != nil || got.GetId() != account):
		h.tb.Errorf("Authenticate(%s) = %v, %v; want account %s", key, got, err, account)
	}
}

func TestKeyLifecycle(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	first, err := h.client.CreateAccount(ctx, &messages.CreateAccount{Name: "a", KeySha256: keySum("key_first"), KeyId: "key_first"})
	if err != nil {
		t.Fatal(err)
	}
	acct := first.GetAccount().GetId()
	other := h.createAccount("b", 0).GetAccount().GetId()
	h.createKey(other, "key_other", false)

	second := h.createKey(acct, "key_second", false)
	wantSecond := &messages.APIKey{KeyId: "key_second", AccountId: acct, Sha256: keySum("key_second"), CreatedUnixMs: harnessNowMs}
	if diff := cmp.Diff(wantSecond, second.GetKey(), protocmp.Transform()); diff != "" {
		t.Errorf("CreateKey (-want +got):\n%s", diff)
	}
	if len(second.GetRevoked()) != 0 {
		t.Errorf("CreateKey without revoke_others revoked %v", second.GetRevoked())
	}
	wantFirst := &messages.APIKey{KeyId: "key_first", AccountId: acct, Sha256: keySum("key_first"), CreatedUnixMs: harnessNowMs}
	if diff := cmp.Diff([]*messages.APIKey{wantFirst, wantSecond}, h.keys(acct), protocmp.Transform()); diff != "" {
		t.Errorf("Keys: the account's first key and the new one (-want +got):\n%s", diff)
	}
	h.wantAuth("key_first", acct)
	h.wantAuth("key_second", acct)

	rec, err := h.client.RevokeKey(ctx, acct, "key_second")
	if err != nil {
		t.Fatal(err)
	}
	wantRevoked := &messages.APIKey{KeyId: "key_second", AccountId: acct, Sha256: keySum("key_second"),
		CreatedUnixMs: harnessNowMs, Revoked: true, RevokedUnixMs: harnessNowMs}
	if diff := cmp.Diff(wantRevoked, rec, protocmp.Transform()); diff != "" {
		t.Errorf("RevokeKey (-want +got):\n%s", diff)
	}
	h.wantAuth("key_second", "")
	h.wantAuth("key_first", acct)
	again, err := h.client.RevokeKey(ctx, acct, "key_second")
	if err != nil || !cmp.Equal(wantRevoked, again, protocmp.Transform()) {
		t.Errorf("RevokeKey again = %v, %v; want the same record and no error", again, err)
	}

	// A key id of another account, an unknown key id, an unknown account.
	for _, tc := range []struct{ account, key string }{{acct, "key_other"}, {acct, "key_none"}, {"acct_none", "key_first"}} {
		if _, err := h.client.RevokeKey(ctx, tc.account, tc.key); !errors.Is(err, ledger.ErrUnknownAccount) {
			t.Errorf("RevokeKey(%s, %s): %v, want ErrUnknownAccount", tc.account, tc.key, err)
		}
	}
	h.wantAuth("key_other", other)
	if _, err := h.client.Keys(ctx, "acct_none"); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Errorf("Keys(unknown account): %v, want ErrUnknownAccount", err)
	}
	if _, err := h.client.CreateKey(ctx, &messages.CreateKey{AccountId: "acct_none", KeyId: "key_x", KeySha256: keySum("key_x")}); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Errorf("CreateKey(unknown account): %v, want ErrUnknownAccount", err)
	}

	// Durable: after a restart the revocation holds.
	h.restart()
	if diff := cmp.Diff([]*messages.APIKey{wantFirst, wantRevoked}, h.keys(acct), protocmp.Transform()); diff != "" {
		t.Errorf("Keys after restart (-want +got):\n%s", diff)
	}
	h.wantAuth("key_second", "")
	h.wantAuth("key_first", acct)
}

func TestCreateKeyRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 0).GetAccount().GetId()
	other := h.createAccount("b", 0).GetAccount().GetId()
	made := h.createKey(acct, "key_1", false).GetKey()

	// The same request again (a retry after a lost answer) is the same key.
	if again := h.createKey(acct, "key_1", false).GetKey(); !cmp.Equal(made, again, protocmp.Transform()) {
		t.Errorf("repeated CreateKey = %v, want %v", again, made)
	}
	for _, tc := range []struct {
		name string
		m    *messages.CreateKey
		want error
	}{
		{"no id", &messages.CreateKey{AccountId: acct, KeySha256: keySum("x")}, ledger.ErrInvalid},
		{"short hash", &messages.CreateKey{AccountId: acct, KeyId: "key_2", KeySha256: []byte("short")}, ledger.ErrInvalid},
		{"id taken", &messages.CreateKey{AccountId: acct, KeyId: "key_1", KeySha256: keySum("other")}, ledger.ErrConflict},
		{"hash taken by another id", &messages.CreateKey{AccountId: acct, KeyId: "key_2", KeySha256: keySum("key_1")}, ledger.ErrConflict},
		{"hash taken by another account", &messages.CreateKey{AccountId: other, KeyId: "key_1", KeySha256: keySum("key_1")}, ledger.ErrConflict},
	} {
		if _, err := h.client.CreateKey(ctx, tc.m); !errors.Is(err, tc.want) {
			t.Errorf("%s: CreateKey: %v, want %v", tc.name, err, tc.want)
		}
	}
	if diff := cmp.Diff([]*messages.APIKey{made}, h.keys(acct), protocmp.Transform()); diff != "" {
		t.Errorf("Keys after refusals (-want +got):\n%s", diff)
	}
	if keys := h.keys(other); len(keys) != 0 {
		t.Errorf("the other account got keys: %v", keys)
	}
	h.wantAuth("key_1", acct)
}

func TestCreateKeyRevokeOthers(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 0).GetAccount().GetId()
	other := h.createAccount("b", 0).GetAccount().GetId()
	h.createKey(acct, "key_1", false)
	h.createKey(acct, "key_2", false)
	h.createKey(acct, "key_3", false)
	h.createKey(other, "key_9", false)
	if _, err := h.client.RevokeKey(ctx, acct, "key_2"); err != nil {
		t.Fatal(err)
	}

	r := h.createKey(acct, "key_4", true)
	var ids []string
	for _, k := range r.GetRevoked() {
		ids = append(ids, k.GetKeyId())
		if !k.GetRevoked() || k.GetRevokedUnixMs() != harnessNowMs {
			t.Errorf("revoked key %v is not marked revoked now", k)
		}
	}
	if diff := cmp.Diff([]string{"key_1", "key_3"}, ids); diff != "" {
		t.Errorf("keys revoked by rotation: only the live ones (-want +got):\n%s", diff)
	}
	for _, id := range []string{"key_1", "key_2", "key_3"} {
		h.wantAuth(id, "")
	}
	h.wantAuth("key_4", acct)
	h.wantAuth("key_9", other)
	live := 0
	for _, k := range h.keys(acct) {
		if !k.GetRevoked() {
			live++
			if k.GetKeyId() != "key_4" {
				t.Errorf("key %s is still live after rotation", k.GetKeyId())
			}
		}
	}
	if live != 1 {
		t.Errorf("%d live keys after rotation, want 1", live)
	}
}

// A key stored before keys were indexed by account (only under its hash) is
// listed, revoked and kept by the next key the account gets.
func TestUnindexedKey(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	acct := h.createAccount("a", 0).GetAccount().GetId()
	old := &messages.APIKey{KeyId: "key_old", AccountId: acct, Sha256: keySum("key_old"), CreatedUnixMs: 5}
	b := h.store.NewBatch()
	b.PutAPIKey(old)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*messages.APIKey{old}, h.keys(acct), protocmp.Transform()); diff != "" {
		t.Errorf("Keys with an unindexed key (-want +got):\n%s", diff)
	}
	h.wantAuth("key_old", acct)
	h.createKey(acct, "key_new", false)
	if got := len(h.keys(acct)); got != 2 {
		t.Errorf("Keys after a new key: %d keys, want the old and the new", got)
	}
	if _, err := h.client.RevokeKey(ctx, acct, "key_old"); err != nil {
		t.Fatalf("RevokeKey(unindexed key): %v", err)
	}
	h.wantAuth("key_old", "")
	h.wantAuth("key_new", acct)
}

func TestKeyMatches(t *testing.T) {
	sum := keySum("k")
	live := &messages.APIKey{KeyId: "key_1", Sha256: sum}
	for _, tc := range []struct {
		name string
		rec  *messages.APIKey
		sum  []byte
		want bool
	}{
		{"live, same hash", live, sum, true},
		{"other hash", live, keySum("j"), false},
		{"revoked", &messages.APIKey{KeyId: "key_1", Sha256: sum, Revoked: true}, sum, false},
		{"no record", nil, sum, false},
		{"short hash", &messages.APIKey{Sha256: sum[:4]}, sum[:4], false},
	} {
		if got := ledger.KeyMatches(tc.rec, tc.sum); got != tc.want {
			t.Errorf("%s: KeyMatches = %v, want %v", tc.name, got, tc.want)
		}
	}
}
