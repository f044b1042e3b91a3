package persistence

import (
	"errors"
	"fmt"
)

// clusterIDKey holds the id of the cluster this node belongs to (key space:
// meta/cluster_id, beside meta/ledger_seq). It is written once, when the node
// forms a cluster or first joins one, and never changes.
var clusterIDKey = []byte("meta/cluster_id")

// ClusterID returns the id of the cluster this node belongs to, or "" when it
// has not been in a cluster yet.
func (s *Store) ClusterID() (string, error) {
	v, err := s.getRaw(clusterIDKey)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// SetClusterID records the id of the cluster this node belongs to, durably.
// It refuses to replace another id (ErrClusterIDSet): a node belongs to one
// cluster for the life of its data dir.
func (s *Store) SetClusterID(id string) error {
	if id == "" {
		return errors.New("persistence: empty cluster id")
	}
	old, err := s.ClusterID()
	if err != nil {
		return err
	}
	switch old {
	case id:
		return nil
	case "":
	default:
		return fmt.Errorf("%w: the store belongs to cluster %s, not %s", ErrClusterIDSet, old, id)
	}
	b := s.NewBatch()
	b.set(clusterIDKey, []byte(id))
	return b.Commit()
}
