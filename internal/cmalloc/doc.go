// Package cmalloc caps the arenas of the C allocator the node uses beside
// Go's. Pebble keeps its block cache and memtables in C memory (malloc,
// with cgo), and glibc gives each thread that allocates its own arena, up
// to eight per core, each keeping its own free memory: Pebble frees and
// allocates cache blocks from whichever thread reads, so over a long run
// the arenas can hold far more than the cache. Two arenas bound that. In
// the hour-long soaks the C side was small and steady (two 64 MB memtables
// and ~30 MB more; docs/reliability.md, Soak), so the cap is a bound for a
// node's lifetime, not what moved those curves.
//
// The cap is set by a cgo constructor at load, before the Go runtime's
// threads allocate (glibc fixes its limit when it makes its first extra
// arena, so a call from Go code comes too late). MALLOC_ARENA_MAX in the
// environment wins. State says which holds, for the start-up log.
package cmalloc
