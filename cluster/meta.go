package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Meta is what a node tells the others about itself. It travels as JSON in
// memberlist's NodeMeta, which memberlist limits to MaxMetaSize bytes: keep
// names and addresses short (a name of 63 characters and three addresses
// of 85 characters fit).
type Meta struct {
	// Name is the node name, unique in the cluster (memberlist's node name).
	Name string `json:"name"`
	// HTTPAddr is where the node serves the REST API (host:port).
	HTTPAddr string `json:"http,omitempty"`
	// RemoteAddr is the host:port of the node's actor system (protoactor remote).
	RemoteAddr string `json:"remote,omitempty"`
	// PeerAddr is the host:port of the node's peer HTTP port, where the
	// other members (and only they) fetch its PDFs and pass it requests.
	PeerAddr string `json:"peer,omitempty"`
	// Incarnation is a random id chosen at every process start: the same name
	// with a new Incarnation is a restarted process that lost its actors.
	Incarnation string `json:"inc"`
	// Capacity is how many chunks the node runs at once.
	Capacity int `json:"cap,omitempty"`
	// Load is how many chunks the node is running.
	Load int `json:"load,omitempty"`
	// Queued is how many chunks wait for a slot on the node.
	Queued int `json:"queued,omitempty"`
	// Draining means no new work should be placed on the node.
	Draining bool `json:"draining,omitempty"`
	// RaftAddr is the node's Raft transport address ("" for a node alone),
	// RaftID its Raft server id (name@data-dir id), and RaftFormed whether
	// it is in a Raft group already.
	RaftAddr   string `json:"raft,omitempty"`
	RaftID     string `json:"rid,omitempty"`
	RaftFormed bool   `json:"rf,omitempty"`
	// Leaving is set by Leave just before the goodbye, so that the others can
	// tell a graceful leave from a failure (see EventLeft).
	Leaving bool `json:"leaving,omitempty"`
	// StartedUnixMs is when the process started, in Unix milliseconds.
	StartedUnixMs int64 `json:"started,omitempty"`
	// ClusterID is the id of the cluster the node belongs to (a UUID made
	// when the cluster formed); empty on a new node until it joins one.
	// Members of another cluster are refused (see Config.ClusterID).
	ClusterID string `json:"cid,omitempty"`
}

// MaxMetaSize is the largest encoded Meta that memberlist accepts.
const MaxMetaSize = memberlist.MetaMaxSize

// incarnationLen is the length of the ids newIncarnation makes.
const incarnationLen = 16

// newIncarnation returns a random id for this process: 64 bits in hex.
func newIncarnation() string {
	var b [incarnationLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return hex.EncodeToString(b[:])
}

// encodeMeta returns m as it travels in NodeMeta, or ErrMetaTooLarge.
func encodeMeta(m Meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode metadata: %w", err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes, memberlist allows %d (shorten the node name or the addresses)",
			ErrMetaTooLarge, len(b), MaxMetaSize)
	}
	return b, nil
}

// decodeMeta reads the metadata another node gossiped.
func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, errors.New("cluster: node has no metadata (not a Quire node?)")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("cluster: decode metadata: %w", err)
	}
	if m.Name == "" {
		return Meta{}, errors.New("cluster: metadata has no node name")
	}
	return m, nil
}

// check says what is wrong with counts a caller set.
func (m Meta) check() error {
	if m.Capacity < 0 || m.Load < 0 || m.Queued < 0 {
		return fmt.Errorf("%w: capacity, load and queued must not be negative (got %d, %d, %d)",
			ErrInvalidMeta, m.Capacity, m.Load, m.Queued)
	}
	return nil
}
