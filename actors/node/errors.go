package node

import "errors"

// Errors of the node, mapped to HTTP statuses in one place in httpapi.
var (
	// ErrJobNotFound means no job with that id belongs to the caller.
	ErrJobNotFound = errors.New("node: job not found")
	// ErrJobFinished means the job has already ended (it cannot be cancelled).
	ErrJobFinished = errors.New("node: job already finished")
	// ErrInvalidRequest means a job parameter is out of range.
	ErrInvalidRequest = errors.New("node: invalid request")
	// ErrTooManyPages means the PDF has more pages than a job may have.
	ErrTooManyPages = errors.New("node: too many pages")
	// ErrUnauthorized means the API key is unknown or revoked.
	ErrUnauthorized = errors.New("node: invalid API key")
	// ErrUnavailable means the node cannot take the request now (shutting down).
	ErrUnavailable = errors.New("node: unavailable")
	// ErrNotLeader means the request needs the Raft leader and this node is
	// not it: pass it to the leader.
	ErrNotLeader = errors.New("node: not the Raft leader")
	// ErrNotFound means no such thing (a Raft server to remove).
	ErrNotFound = errors.New("node: not found")
)
