// Package fault holds test-only fault hooks: points where a binary built with
// the quirefault build tag misbehaves on purpose, so that end-to-end tests can
// drive the real binary into failures that are hard to cause from outside.
//
// A hook is a function called at one place in the code. Without the tag
// (every production build) each hook is an empty function that the compiler
// removes; the environment variables below are not even read.
//
// Hooks of a quirefault build:
//
//   - ChunkStarted: QUIRE_FAULT_CRASH_ON_CHUNK=<file sha256>:<page> kills the
//     process with SIGKILL (as the kernel's OOM killer would) as soon as a
//     chunk that covers that page of the file with that SHA-256 has been
//     recorded as started on this node.
//   - Reserving, Reserved: QUIRE_FAULT_CRASH_RESERVE=before (or after) kills
//     the process when a submission has recorded its pending reservation and
//     is about to ask the ledger (or once the ledger has reserved, before the
//     job is recorded).
package fault
