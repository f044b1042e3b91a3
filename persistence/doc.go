// Package persistence is Quire's embedded store: a Pebble database plus a
// folder of uploaded PDFs, both under the node's data directory.
//
// A Store holds the job event logs (one ordered log per job, replayed to
// rebuild a job), chunk outputs, the credit ledger (entries and per-account
// balances), accounts and hashed API keys, idempotency keys and the blobs
// (uploaded PDFs, streamed to disk). Every write that acknowledges a state
// change is a Batch committed with Sync. The recovery scan (ActiveJobs) lists
// every job that has not reached a terminal state. RaftLog is hashicorp/raft's
// log store and stable store on the same database, in its own key space
// (raft/, keys.go).
//
// A full disk never ends the process (space.go): CheckSpace refuses new work
// below a free-space floor; a write that fails for lack of space answers
// ErrInsufficientStorage; after a failed commit (Pebble takes no write after
// one) the store reopens its database, read-only until the disk has room
// again, then for writing, without a restart.
package persistence
