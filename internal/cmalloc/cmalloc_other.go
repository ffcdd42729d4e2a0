//go:build !linux || !cgo

package cmalloc

import "errors"

// Arenas is the cap glibc's arenas get where there are any.
const Arenas = 2

// State reports errors.ErrUnsupported: without cgo Pebble allocates from
// the Go heap, and other systems' allocators have no glibc arenas.
func State() (string, error) { return "", errors.ErrUnsupported }

func arenasAfterThreads(k int) int { return -1 }
