//go:build unix

package sdkas

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockFile takes an exclusive lock on path (created if need be) and
// returns its release; when the lock cannot be had it returns a no-op:
// the lock only saves duplicate builds, it guards no correctness (the
// cache is written by rename).
func lockFile(path string) func() {
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX) != nil {
		_ = f.Close()
		return func() {}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}
}
