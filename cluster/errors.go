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
	// (name, incarnation or start time), or a count is negative.
	ErrInvalidMeta = errors.New("cluster: invalid node metadata")
)
