//go:build quirefault

package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Enabled reports whether this binary was built with the quirefault tag.
const Enabled = true

// CrashOnChunkEnv names the variable of the ChunkStarted hook: <sha256>:<page>.
const CrashOnChunkEnv = "QUIRE_FAULT_CRASH_ON_CHUNK"

var crashOn = parseChunk(os.Getenv(CrashOnChunkEnv))

type chunkMark struct {
	sha  string
	page int32
}

func parseChunk(v string) *chunkMark {
	if v == "" {
		return nil
	}
	sha, page, ok := strings.Cut(v, ":")
	p, err := strconv.ParseInt(page, 10, 32)
	if !ok || err != nil || sha == "" || p < 1 {
		fmt.Fprintf(os.Stderr, "quirefault: %s=%q is not <sha256>:<page>\n", CrashOnChunkEnv, v)
		os.Exit(2)
	}
	return &chunkMark{sha: strings.ToLower(sha), page: int32(p)}
}

// ChunkStarted is called when a chunk of the file with SHA-256 fileSHA256
// covering pages first..last has been recorded as started on this node: it
// kills the process if the chunk is the one QUIRE_FAULT_CRASH_ON_CHUNK names.
func ChunkStarted(fileSHA256 string, first, last int32) {
	m := crashOn
	if m == nil || !strings.EqualFold(fileSHA256, m.sha) || m.page < first || m.page > last {
		return
	}
	fmt.Fprintf(os.Stderr, "quirefault: killing the process: chunk of pages %d-%d started\n", first, last)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// CrashReserveEnv names the variable of the Reserving and Reserved hooks:
// "before" kills the process before the ledger is asked, "after" once it
// has reserved (the job is not recorded yet).
const CrashReserveEnv = "QUIRE_FAULT_CRASH_RESERVE"

var crashReserve = os.Getenv(CrashReserveEnv)

// Reserving kills the process when QUIRE_FAULT_CRASH_RESERVE=before.
func Reserving(job string) { crashAt("before", job) }

// Reserved kills the process when QUIRE_FAULT_CRASH_RESERVE=after.
func Reserved(job string) { crashAt("after", job) }

func crashAt(when, job string) {
	if crashReserve != when {
		return
	}
	fmt.Fprintf(os.Stderr, "quirefault: killing the process %s the ledger reserves job %s\n", when, job)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
