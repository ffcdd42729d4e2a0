// Package keys holds Ember's two signature schemes as pure functions over
// bytes: Koinos's secp256k1 compact recoverable signatures, which koilib
// wallets produce, and the Ed25519 fast lane. It signs, recovers and
// verifies single signatures, and encodes keys as text (WIF for secp256k1,
// as koilib reads them). Reading and writing key files is done elsewhere
// (internal/keyfile): the engine touches no files.
//
// Signature forms, told apart by length and first byte:
//
//	secp256k1 (Koinos): 65 bytes = (31 + recid) ‖ r ‖ s, over the 32-byte
//	                    digest of the transaction or block id
//	Ed25519 fast lane:  97 bytes = 0xED ‖ public key (32) ‖ signature (64),
//	                    over the same 32-byte digest
//
// Both schemes yield an address: the Koinos derivation over the compressed
// secp256k1 key (33 bytes) or the Ed25519 key (32 bytes). A transaction is
// authorized by an account when one of its signatures yields that address.
//
// Verify checks one signature. Verifier checks many with the same results,
// faster: Ed25519 in batches, with per-goroutine caches of expanded keys
// and addresses (engine/sigverify gives one to each worker).
//
// secp256k1 recovery runs on libsecp256k1 (cgo, through go-ethereum's
// binding) by default, or on decred's pure Go with -tags purego or
// CGO_ENABLED=0; Koinos's rules are applied in Go before either, so both
// return the same key or the same error for every input (secp256k1.go).
// Ed25519 runs on curve25519-voi with the rules of Ed25519VerifyOptions
// (ed25519.go). engine/sigverify's doc.go explains both choices, with the
// benchmark figures.
package keys
