// Package atomicfile replaces files so that a crash leaves either the old
// contents or the new, never a mix: the data goes to a temporary file in
// the same directory, which is synced, given its mode, renamed over the
// target, and the directory is synced so that the rename itself survives
// a power cut.
package atomicfile
