//go:build unix

package proccpu

import (
	"syscall"
	"time"
)

// Self is the CPU time (user and system) this process has used, every
// goroutine and thread together; 0 if the kernel will not say.
func Self() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
