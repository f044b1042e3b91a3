package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
)

// An account's API keys are stored under the hash of the key (key/<sha256>,
// see keys.go), which is how a request is authenticated, and indexed by
// account, which is how an admin lists, revokes and rotates them:
//
//	acctkey/<account>/<key id>      the key's SHA-256 (raw bytes)
//
// Keys stored before the index existed have no acctkey entry; AccountKeys
// finds them by a scan of key/ while the account has no indexed key, and the
// ledger indexes them when it next writes a key of that account.

func accountKeyIndexKey(account, keyID string) []byte {
	return []byte("acctkey/" + account + "/" + keyID)
}

func accountKeyIndexPrefix(account string) []byte { return []byte("acctkey/" + account + "/") }

var apiKeyPrefix = []byte("key/")

// PutAccountKey stores an API key record under the hash of the key and
// indexes it under its account, in the same batch.
func (b *Batch) PutAccountKey(k *messages.APIKey) {
	if k.GetAccountId() == "" || k.GetKeyId() == "" || len(k.GetSha256()) == 0 {
		b.err = fmt.Errorf("persistence: API key without account, id or hash: key id %q, account %q", k.GetKeyId(), k.GetAccountId())
		return
	}
	b.PutAPIKey(k)
	b.set(accountKeyIndexKey(k.GetAccountId(), k.GetKeyId()), k.GetSha256())
}

// AccountKey finds an account's key by its id, or ErrNotFound.
func (s *Store) AccountKey(account, keyID string) (*messages.APIKey, error) {
	db, done, err := s.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	v, closer, err := db.Get(accountKeyIndexKey(account, keyID))
	if err != nil && !errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("persistence: get key %s of %s: %w", keyID, account, err)
	}
	if err == nil {
		sum := bytes.Clone(v)
		closer.Close()
		k, err := s.APIKeyByHash(sum)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: index of key %s of %s names a missing key", ErrCorrupt, keyID, account)
		}
		return k, err
	}
	// Not indexed: it may be a key stored before the index existed.
	keys, err := s.AccountKeys(account)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.GetKeyId() == keyID {
			return k, nil
		}
	}
	return nil, ErrNotFound
}

// AccountKeys lists an account's keys (revoked ones included), in key id
// order.
func (s *Store) AccountKeys(account string) ([]*messages.APIKey, error) {
	var sums [][]byte
	err := s.scan(accountKeyIndexPrefix(account), false, func(_, v []byte) (bool, error) {
		sums = append(sums, bytes.Clone(v))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return s.unindexedKeys(account)
	}
	out := make([]*messages.APIKey, 0, len(sums))
	for _, sum := range sums {
		k, err := s.APIKeyByHash(sum)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: index of %s names a missing key", ErrCorrupt, account)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// unindexedKeys finds an account's keys by reading every key record: the
// way to the keys stored before the acctkey index.
func (s *Store) unindexedKeys(account string) ([]*messages.APIKey, error) {
	var out []*messages.APIKey
	err := s.scan(apiKeyPrefix, false, func(k, v []byte) (bool, error) {
		rec := &messages.APIKey{}
		if err := proto.Unmarshal(v, rec); err != nil {
			return false, fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
		}
		if rec.GetAccountId() == account {
			out = append(out, rec)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	// In key id order, like the index.
	slices.SortFunc(out, func(a, b *messages.APIKey) int { return strings.Compare(a.GetKeyId(), b.GetKeyId()) })
	return out, nil
}
