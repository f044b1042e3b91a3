package persistence

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// nodeIDKey holds the id of this data dir (key space: meta/node_id): made at
// its first start, it never changes. A node that lost its data dir comes
// back with another id: the Raft group tells it apart from the server it
// was (whose votes and log it does not have).
var nodeIDKey = []byte("meta/node_id")

// NodeID returns the id of this data dir, made (and stored durably) on the
// first call.
func (s *Store) NodeID() (string, error) {
	v, err := s.getRaw(nodeIDKey)
	if err == nil {
		return string(v), nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	batch := s.NewBatch()
	batch.set(nodeIDKey, []byte(id))
	if err := batch.Commit(); err != nil {
		return "", err
	}
	return id, nil
}
