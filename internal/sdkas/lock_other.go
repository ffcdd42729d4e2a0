//go:build !unix

package sdkas

// lockFile is a no-op where flock is not available: concurrent test
// binaries may then build the same contract twice, which costs time only.
func lockFile(string) func() { return func() {} }
