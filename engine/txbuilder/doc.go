// Package txbuilder builds and signs Koinos transactions the way koilib
// does: operations, operation merkle root, header, id, signatures. The CLI,
// bench and tests use it; it is pure and allocates only the transaction.
package txbuilder
