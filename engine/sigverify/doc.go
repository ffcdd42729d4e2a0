// Package sigverify turns decoded transactions into *VerifiedTx values: it
// runs the stateless checks (form, limits, chain id, id, operation merkle
// root), verifies every signature (Koinos secp256k1 recovery or the Ed25519
// fast lane) and checks that the payer signed. A *VerifiedTx can only be
// made here, so the engine can require one and never verify twice.
package sigverify
