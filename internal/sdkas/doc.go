// Package sdkas builds the AssemblyScript contracts in testdata/assembly
// with Koinos's own SDK and compiler (@koinos/sdk-as, assemblyscript; the
// npm project in testdata, installed by `make js-deps`), so that tests of
// any package run real Koinos contracts: engine/vm's on the VM, node's
// through a deployed chain. testdata/README.md says what each contract
// does and how to use it.
//
// Contract compiles a contract once per process and keeps the result in
// the user's cache directory, keyed by the sources, the lock file and the
// compiler flags: asc takes seconds, and make test runs packages twice.
// Without Node.js or the npm packages a test is skipped, or fails when
// CI=true.
//
// cmd/build-contract writes a contract's wasm to a file (make
// token-wasm: bin/token.wasm for ember bench --workload wasm-token).
//
// The token and kvstore contracts have ABIs in testdata/abi/<name>.abi
// that both koilib (entry_point, read_only, events, types) and
// koinos-cli (entry-point, read-only, types) read. GenerateABI writes
// them from Go descriptors (the token's from proto/), and a test keeps
// the committed files equal to it (go test ./internal/sdkas -run
// TestABIFiles -update rewrites them).
package sdkas
