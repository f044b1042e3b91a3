package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Where the memory limit is read from.
const (
	cgroupV2MemoryMax = "/sys/fs/cgroup/memory.max"                   // cgroup v2: bytes, or "max"
	cgroupV1MemoryMax = "/sys/fs/cgroup/memory/memory.limit_in_bytes" // cgroup v1: bytes, huge when unlimited
	procMeminfo       = "/proc/meminfo"
)

func init() {
	set.RegisterMetricsWriter(writeMemoryLimit)
}

// writeMemoryLimit writes quire_memory_limit_bytes, or nothing where no limit
// can be read (not Linux): a missing series leaves the memory alert silent,
// where a 0 would make it fire.
func writeMemoryLimit(w io.Writer) {
	limit, ok := memoryLimit(readFile)
	if !ok {
		return
	}
	fmt.Fprintf(w, "# HELP quire_memory_limit_bytes %s\n# TYPE quire_memory_limit_bytes gauge\nquire_memory_limit_bytes %d\n",
		help["quire_memory_limit_bytes"], limit)
}

func readFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

// memoryLimit returns the memory this process may use: the cgroup's limit
// when one is set and below the machine's memory, else the machine's
// memory (MemTotal). read returns a file's contents, nil if it cannot.
func memoryLimit(read func(path string) []byte) (uint64, bool) {
	total, haveTotal := parseMeminfoTotal(read(procMeminfo))
	limit, haveLimit := parseCgroupLimit(read(cgroupV2MemoryMax))
	if !haveLimit {
		limit, haveLimit = parseCgroupLimit(read(cgroupV1MemoryMax))
	}
	switch {
	case haveLimit && (!haveTotal || limit < total):
		return limit, true
	case haveTotal:
		return total, true
	default:
		return 0, false
	}
}

// parseCgroupLimit reads a cgroup memory limit file: a number of bytes, or
// "max" for none. A limit of 0 counts as none.
func parseCgroupLimit(b []byte) (uint64, bool) {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// parseMeminfoTotal reads the MemTotal line of /proc/meminfo
// ("MemTotal:       24600000 kB") and returns it in bytes.
func parseMeminfoTotal(b []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("MemTotal:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil || n == 0 {
			return 0, false
		}
		mult := uint64(1)
		if len(fields) > 1 && string(fields[1]) == "kB" {
			mult = 1024
		}
		if n > (1<<64-1)/mult {
			return 0, false
		}
		return n * mult, true
	}
	return 0, false
}
