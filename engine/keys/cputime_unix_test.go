//go:build unix

package keys

import "syscall"

// processCPU returns the user+system CPU time this process has used, in
// nanoseconds. Benchmarks report CPU time per signature beside wall time:
// on a shared machine wall time depends on what else runs, CPU time much
// less, so the two together show whether a change scales or merely waits.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
