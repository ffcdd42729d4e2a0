// Command build-contract writes the WebAssembly of one of internal/sdkas's
// AssemblyScript contracts to a file, built with Koinos's SDK and compiler
// as the tests build it (sdkas.Build, cached in the user's cache
// directory):
//
//	go run ./internal/sdkas/cmd/build-contract -o bin/token.wasm token
//
// It needs Node.js and the npm packages (make js-deps) unless the cache
// already holds the build. `make token-wasm` runs it for the KCS-1 token
// that `ember bench --workload wasm-token --contract bin/token.wasm`
// deploys, so the bench binary itself never needs Node.js.
package main
