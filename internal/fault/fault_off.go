//go:build !quirefault

package fault

// Enabled reports whether this binary was built with the quirefault tag.
const Enabled = false

// ChunkStarted is called when a chunk of the file with SHA-256 fileSHA256
// covering pages first..last has been recorded as started on this node.
func ChunkStarted(string, int32, int32) {}

// Reserving is called when a node has recorded a job's pending reservation
// and is about to ask the ledger; Reserved when the ledger has reserved and
// the job is not recorded yet.
func Reserving(string) {}

// Reserved: see Reserving.
func Reserved(string) {}
