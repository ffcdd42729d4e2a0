//go:build !unix

package childproc

import "os/exec"

// SetDeathSignal has no equivalent here: a parent killed on this system
// may leave its children running.
func SetDeathSignal(*exec.Cmd) {}

// SetOwnProcessGroup does nothing here: the console delivers Ctrl-C to the
// children as well, and they stop on it themselves.
func SetOwnProcessGroup(*exec.Cmd) {}
