package keys

import (
	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/emberchain/ember/engine/koinos"
)

// Ed25519VerifyOptions are the verification rules of the fast lane, the
// same for a signature verified alone and in a batch:
//   - the cofactored equation [8]SB = [8]R + [8]H(R‖A‖m)A (RFC 8032 §5.1.7,
//     FIPS 186-5), the only one a batch can check, so that single and batch
//     verification agree on every input;
//   - S must be below the group order L (no S+L malleability);
//   - R and A must be canonical encodings (y < p, no negative zero), so a
//     signature has one valid encoding;
//   - A must not be a small-order point. A small-order key "signs" every
//     message with the same signature (S = 0, R = identity verifies under
//     the cofactored equation), so its address would be anyone's to spend
//     from. This is FIPS 186-5 plus that one check (curve25519-voi's own
//     default preset); honestly generated keys are never small-order.
//     Small-order R stays allowed, as in FIPS 186-5: it only weakens the
//     signer's own nonce.
var Ed25519VerifyOptions = &ed25519.Options{Verify: &ed25519.VerifyOptions{
	AllowSmallOrderA:   false,
	AllowSmallOrderR:   true,
	AllowNonCanonicalA: false,
	AllowNonCanonicalR: false,
	CofactorlessVerify: false,
}}

// VerifyEd25519 checks a fast-lane signature over digest and returns the
// address of its key.
func VerifyEd25519(sig []byte, digest koinos.Digest) (koinos.Address, error) {
	pub, raw, err := SplitEd25519(sig)
	if err != nil {
		return koinos.Address{}, err
	}
	if !ed25519.VerifyWithOptions(pub, digest[:], raw, Ed25519VerifyOptions) {
		return koinos.Address{}, ErrEd25519
	}
	return koinos.AddressFromKey(pub), nil
}

// smallOrderKeys are the canonical encodings of the eight points of small
// order (the 8-torsion subgroup). A canonical encoding is small-order
// exactly when it is one of these.
var smallOrderKeys = func() (out [8][32]byte) {
	for i, p := range curve.EIGHT_TORSION {
		var c curve.CompressedEdwardsY
		c.SetEdwardsPoint(p)
		out[i] = c
	}
	return out
}()

// ed25519Prescreen applies, with byte comparisons only, the rules that make
// curve25519-voi mark a batch entry as undecodable: S ≥ L, a non-canonical
// R or A, a small-order A. Every signature it rejects is rejected by
// VerifyWithOptions too; it exists so that such a signature is answered
// without entering a batch, because one undecodable entry sends voi's
// whole batch down the serial path. (An R that is not on the curve still
// does: finding it needs a square root.)
func ed25519Prescreen(pub, raw []byte) bool {
	if !scalar.ScMinimalVartime(raw[32:]) {
		return false
	}
	var r, a curve.CompressedEdwardsY
	copy(r[:], raw[:32])
	copy(a[:], pub)
	if !r.IsCanonicalVartime() || !a.IsCanonicalVartime() {
		return false
	}
	for i := range smallOrderKeys {
		if a == smallOrderKeys[i] {
			return false
		}
	}
	return true
}
