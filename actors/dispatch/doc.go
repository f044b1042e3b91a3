// Package dispatch is the node's Dispatcher: the actor that owns this node's
// chunk slots (--concurrency). JobActors hand it ChunkWork; it runs each on a
// ChunkActor when a slot is free and forwards the result to the job.
//
// Waiting work is shared fairly: the dispatcher takes turns between accounts,
// and within an account between jobs, so a small job is never stuck behind a
// large one and one account cannot starve another.
//
// Work marked isolated (a chunk that was in flight when a node crashed) goes
// before the fair queue and runs alone: it starts once nothing runs, and
// nothing starts while it runs, so that a crash during it is blamed on it.
package dispatch
