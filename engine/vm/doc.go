// Package vm runs Koinos smart contracts: WebAssembly modules whose only
// way out of the sandbox is Koinos's system-call dispatcher,
// env.invoke_system_call, with Koinos's system-call ids and argument and
// result messages (koinos/chain/system_calls.proto).
//
// Data flow: bytecode is instrumented once (instrument: fuel and call
// depth counters, a refusal of whatever would not run the same on every
// machine), compiled by wazero and cached by contract id and bytecode
// hash. Each call takes an instance of the cached module from its pool
// (pool.go: reset after every call to exactly a fresh instance's memory
// and globals), sets its fuel, runs its start function and _start, and
// serves its system calls from the Call and the Host (the chain's state
// and context). The call ends at exit (the instrumented code unwinds on
// the host's halt flag), a return from _start, a trap, or fuel running
// out; Result carries the value, events, logs and the compute used, also
// on failure.
//
// Determinism: compute is counted in instructions by the instrumented
// code itself, never by time; memory is capped in pages and call depth in
// frames, both checked the same way on every engine.
package vm
