package ledger

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// An account's API keys live with it in the ledger's store: each under the
// SHA-256 of the key (the key itself is never stored), indexed by account.
// A key is created, listed and revoked here; revoking keeps the record, with
// the time, so that a list shows what was revoked when. Every request about a
// key names its account: a key id of another account is unknown.

// KeyMatches reports whether rec is a live key whose stored hash is sum. The
// hashes are compared in constant time, even though rec was found by sum.
func KeyMatches(rec *messages.APIKey, sum []byte) bool {
	return rec != nil && !rec.GetRevoked() && len(sum) == sha256.Size &&
		subtle.ConstantTimeCompare(rec.GetSha256(), sum) == 1
}

// createKey adds a key to an account. Repeating a request that was applied
// (same account, id and hash) answers the key as it is; a hash or an id
// already taken by another key is a conflict. With revoke_others, the
// account's other live keys are revoked in the same write.
func (a *Machine) createKey(m *messages.CreateKey) any {
	account := m.GetAccountId()
	if _, ok := a.balances[account]; !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, account)
	}
	if m.GetKeyId() == "" || len(m.GetKeySha256()) != sha256.Size {
		return codeError(messages.LedgerError_CODE_INVALID, "a key needs an id and a SHA-256")
	}
	if rec, err := a.store.APIKeyByHash(m.GetKeySha256()); err == nil {
		if rec.GetAccountId() == account && rec.GetKeyId() == m.GetKeyId() {
			return &messages.KeyReply{Key: rec}
		}
		return codeError(messages.LedgerError_CODE_CONFLICT, "another key has this hash")
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	keys, err := a.store.AccountKeys(account)
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	b := a.store.NewBatch()
	reply := &messages.KeyReply{}
	for _, k := range keys {
		if k.GetKeyId() == m.GetKeyId() {
			b.Discard()
			return codeError(messages.LedgerError_CODE_CONFLICT, "account "+account+" already has a key "+m.GetKeyId())
		}
		if m.GetRevokeOthers() && !k.GetRevoked() {
			k = revoked(k, a.nowMs())
			reply.Revoked = append(reply.Revoked, k)
		}
		// Written again: this also indexes keys stored before the index.
		b.PutAccountKey(k)
	}
	reply.Key = &messages.APIKey{KeyId: m.GetKeyId(), AccountId: account, Sha256: m.GetKeySha256(), CreatedUnixMs: a.nowMs()}
	b.PutAccountKey(reply.Key)
	if err := a.commit(b); err != nil {
		return err
	}
	a.log.Info("API key created", "account", account, "key_id", reply.Key.GetKeyId(), "revoked", len(reply.Revoked))
	return reply
}

// revokeKey revokes one key of an account. Revoking a revoked key answers it
// as it is (with the time it was first revoked).
func (a *Machine) revokeKey(m *messages.RevokeKey) any {
	account := m.GetAccountId()
	if _, ok := a.balances[account]; !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, account)
	}
	rec, err := a.store.AccountKey(account, m.GetKeyId())
	if errors.Is(err, persistence.ErrNotFound) {
		// The account exists but the key is not one of its own: to the
		// caller it is as unknown as an unknown account.
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, "account "+account+" has no key "+m.GetKeyId())
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	if rec.GetRevoked() {
		return &messages.KeyReply{Key: rec}
	}
	rec = revoked(rec, a.nowMs())
	b := a.store.NewBatch()
	b.PutAccountKey(rec)
	if err := a.commit(b); err != nil {
		return err
	}
	a.log.Info("API key revoked", "account", account, "key_id", rec.GetKeyId())
	return &messages.KeyReply{Key: rec}
}

// listKeys lists an account's keys, revoked ones included.
func (a *Machine) listKeys(m *messages.ListKeys) any {
	if _, ok := a.balances[m.GetAccountId()]; !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, m.GetAccountId())
	}
	keys, err := a.store.AccountKeys(m.GetAccountId())
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	return &messages.KeyList{Keys: keys}
}

func revoked(k *messages.APIKey, atMs int64) *messages.APIKey {
	return &messages.APIKey{
		KeyId: k.GetKeyId(), AccountId: k.GetAccountId(), Sha256: k.GetSha256(),
		CreatedUnixMs: k.GetCreatedUnixMs(), Revoked: true, RevokedUnixMs: atMs,
	}
}
