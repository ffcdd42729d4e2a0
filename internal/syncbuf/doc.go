// Package syncbuf is a bytes.Buffer that one goroutine writes while
// another reads it. Tests use it to count what a running node logs.
//
// Data flow: a writer (a node's slog handler, or a child process's
// stdout/stderr through exec.Cmd) calls Write under the buffer's mutex; the
// test reads snapshots with String, Lines or Count, each taken under the
// same mutex, while the writer keeps going. Nothing is ever dropped or
// trimmed: the buffer holds everything written until the test ends, so it
// is for tests and bounded runs only.
package syncbuf
