// Package node runs one Quire node's actors: the LedgerActor, the Dispatcher
// and one JobActor per running job, in one protoactor-go actor system over a
// persistence.Store. A Node is what the HTTP layer talks to: it accepts
// uploads as jobs, reads jobs back from their event logs, cancels them, and
// on start resumes every job that had not finished (the recovery scan).
package node
