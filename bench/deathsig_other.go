//go:build !linux

package bench

import "os/exec"

// setDeathSignal has no portable equivalent outside Linux: a bench killed
// there may leave its node running.
func setDeathSignal(*exec.Cmd) {}
