package cluster

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"github.com/hashicorp/memberlist"
)

// identity is this node's cluster id as memberlist's merge and alive
// delegates see it: they refuse any member whose metadata carries another id,
// so that it never appears in the member table (memberlist calls them for a
// join's or a push/pull's node list, and for every alive message).
//
// A node with no id yet (a new node that joins) takes the first id it sees
// and tells the Cluster on adopted, which records and gossips it.
type identity struct {
	log *slog.Logger

	mu struct {
		sync.Mutex
		id       string
		refused  map[string]bool // "name/id" of members refused, logged once each
		conflict string          // the first other id seen, for Start's verdict
	}
	adopted chan string // buffer 1: receives the id a node with none took
}

var (
	_ memberlist.MergeDelegate = (*identity)(nil)
	_ memberlist.AliveDelegate = (*identity)(nil)
)

func newIdentity(id string, log *slog.Logger) *identity {
	d := &identity{log: log, adopted: make(chan string, 1)}
	d.mu.id = id
	d.mu.refused = map[string]bool{}
	return d
}

// newClusterID makes the id of a new cluster.
func newClusterID() string { return uuid.NewString() }

func (d *identity) id() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.id
}

// form takes id as the cluster's when this node has none yet (it forms the
// cluster later than it started: with the Raft group); it reports whether
// it did.
func (d *identity) form(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.id != "" || id == "" {
		return false
	}
	d.mu.id = id
	d.adopted <- id // never blocks: the id is taken once
	return true
}

// conflict returns the first id of another cluster a member carried, or "".
func (d *identity) conflict() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.conflict
}

// NotifyMerge refuses a join or push/pull whose node list holds a member of
// another cluster (the whole merge is cancelled).
func (d *identity) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if err := d.check(p); err != nil {
			return err
		}
	}
	return nil
}

// NotifyAlive refuses an alive message about a member of another cluster.
func (d *identity) NotifyAlive(peer *memberlist.Node) error { return d.check(peer) }

// check accepts a member with no cluster id (a new node, not joined yet) or
// with this node's; a node with no id adopts the first it sees.
func (d *identity) check(peer *memberlist.Node) error {
	meta, err := decodeMeta(peer.Meta)
	if err != nil || meta.ClusterID == "" {
		return nil // the event loop reports unreadable metadata
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.mu.id {
	case meta.ClusterID:
		return nil
	case "":
		d.mu.id = meta.ClusterID
		d.adopted <- meta.ClusterID // never blocks: the id is taken once
		return nil
	}
	if d.mu.conflict == "" {
		d.mu.conflict = meta.ClusterID
	}
	if key := peer.Name + "/" + meta.ClusterID; !d.mu.refused[key] {
		d.mu.refused[key] = true
		d.log.Error("refusing a member of another cluster", logKeyMember, peer.Name, logKeyGossipAddr, peer.Address(),
			logKeyClusterID, d.mu.id, logKeyOtherCluster, meta.ClusterID)
	}
	return fmt.Errorf("%w: member %s belongs to cluster %s, this node to %s", ErrOtherCluster, peer.Name, meta.ClusterID, d.mu.id)
}
