// Package proccpu reads how much CPU time a process has used: this one's
// from getrusage, another's (a child node, a local broker) from
// /proc/<pid>/stat. Benchmarks report CPU per operation beside wall time,
// because on a shared machine wall time moves with whatever else runs and
// CPU time much less.
package proccpu
