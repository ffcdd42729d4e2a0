// Package cmalloc tunes the C allocator the node uses beside Go's: Pebble
// keeps its block cache and memtables in C memory (malloc, with cgo), and
// glibc gives each thread that allocates its own arena, up to eight per
// core. Pebble frees and allocates cache blocks from whichever thread
// reads, so over an hour the arenas fragment and the process's resident
// memory climbs while the cache stays at its configured size: in a soak
// at 9,000 transfers a second the memory outside the Go heap grew from
// 200 to 245 MB in thirteen minutes, and stayed at 185 MB with two arenas
// (docs/reliability.md, Soak). LimitArenas caps them, as MALLOC_ARENA_MAX
// would, unless the operator set that variable.
package cmalloc
