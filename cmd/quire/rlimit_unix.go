//go:build unix

package main

import (
	"log/slog"
	"syscall"
)

// raiseOpenFileLimit raises the soft limit on open files to the hard limit
// and returns the limit in force (0 if it cannot be read).
func raiseOpenFileLimit(log *slog.Logger) uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		log.Warn("cannot read the open-file limit", "err", err)
		return 0
	}
	before := r.Cur
	if r.Cur < r.Max {
		raised := r
		raised.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("cannot raise the open-file limit", "soft", r.Cur, "hard", r.Max, "err", err)
		} else {
			r = raised
		}
	}
	log.Info("open-file limit", "soft_before", before, "soft", r.Cur, "hard", r.Max)
	return r.Cur
}
