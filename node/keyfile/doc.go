// Package keyfile reads and writes private key files: one key in the text
// form of keys.Signer.String (WIF for secp256k1, as koilib reads it;
// "ed25519:" + base58 seed for the fast lane), mode 0600.
//
// Writes are atomic: a temporary file in the same directory, written,
// fsynced, renamed over the target, then the directory fsynced, so a crash
// leaves either the old key or the new one, never half of one. Reads refuse
// a key that group or others may read: a leaked producer key lets anyone
// sign blocks in its slots (Koinos writes its producer key 0644).
package keyfile
