package cluster

import "errors"

// Errors of the cluster package.
var (
	// ErrClosed means the Cluster has been closed (or has left).
	ErrClosed = errors.New("cluster: closed")
	// ErrMetaTooLarge means the node's metadata does not fit in memberlist's
	// 512-byte NodeMeta once encoded: the name or the addresses are too long.
	ErrMetaTooLarge = errors.New("cluster: node metadata too large")
	// ErrInvalidMeta means a metadata update would change the node's identity
	// (name, incarnation, start time or cluster id), or a count is negative.
	ErrInvalidMeta = errors.New("cluster: invalid node metadata")
	// ErrBadGossipKey means a gossip keyring (Config.GossipKeys, or the file
	// it was read from) is not one base64 key of 16, 24 or 32 bytes per line.
	ErrBadGossipKey = errors.New("cluster: bad gossip key")
	// ErrOtherCluster means the seeds this node reached belong to another
	// cluster than the one in Config.ClusterID.
	ErrOtherCluster = errors.New("cluster: the seeds belong to another cluster")
	// ErrClusterExists means a node told to form a new cluster
	// (Config.FormCluster, with no Config.ClusterID) reached members of an
	// existing cluster: it lost its data and must be restored, not started anew.
	ErrClusterExists = errors.New("cluster: a cluster already exists")
)
