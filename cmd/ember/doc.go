// Command ember is the Ember node and its tools: init a chain, run a node,
// manage keys, send transfers, query status, run benchmarks.
package main
