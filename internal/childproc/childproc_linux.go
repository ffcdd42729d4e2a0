package childproc

import (
	"os/exec"
	"syscall"
)

// SetDeathSignal makes the kernel send the child SIGTERM if the parent dies
// without stopping it (killed, crashed). Linux sends it when the thread
// that started the child exits; Go keeps its threads for the life of the
// process unless a goroutine locked to one returns, which callers of this
// package do not do.
func SetDeathSignal(cmd *exec.Cmd) {
	attr(cmd).Pdeathsig = syscall.SIGTERM
}

// SetOwnProcessGroup puts the child in a process group of its own, so a
// Ctrl-C at the terminal reaches only the parent, which then stops the
// child itself.
func SetOwnProcessGroup(cmd *exec.Cmd) {
	attr(cmd).Setpgid = true
}

func attr(cmd *exec.Cmd) *syscall.SysProcAttr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	return cmd.SysProcAttr
}
