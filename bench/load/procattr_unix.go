//go:build unix

package load

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts the node in a process group of its own, so that a
// Ctrl-C at the terminal reaches the run only, and the run stops its nodes
// in order (after checking the accounts on them).
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
