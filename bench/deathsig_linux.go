package bench

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel stop the child node if the bench dies
// without stopping it (killed, crashed), so no node is left holding a port.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
