//go:build unix && !linux

package childproc

import (
	"os/exec"
	"syscall"
)

// SetDeathSignal has no equivalent outside Linux: a parent killed there
// may leave its children running.
func SetDeathSignal(*exec.Cmd) {}

// SetOwnProcessGroup puts the child in a process group of its own, so a
// Ctrl-C at the terminal reaches only the parent, which then stops the
// child itself.
func SetOwnProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
