package keys

import (
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/emberchain/ember/engine/koinos"
)

// Koinos secp256k1 recovery.
//
// The Koinos rules are checked here, in Go, before any curve arithmetic, so
// that the two interchangeable implementations behind them — libsecp256k1
// through go-ethereum's cgo binding (secp256k1_cgo.go, the default when cgo
// is on) and decred's pure-Go package (always built; the default under
// `-tags purego` or CGO_ENABLED=0) — only ever see a signature that has
// already passed every rule that names an error, and return the same error
// text for every input. TestSecp256k1ImplementationsAgree holds them to it.
//
// What is left to the implementation is the one check that needs the curve:
// that r is the x coordinate of a point and the recovered key is not the
// point at infinity. Both answer it the same way (libsecp256k1's
// secp256k1_ecdsa_recover and decred's RecoverCompact compute
// Q = r⁻¹(sR − eG) from the point with x = r and the parity of the recovery
// id).

// Errors for signatures whose r or s is out of range, or which no key
// recovers from. All wrap ErrRecover.
var (
	errRecoverR     = fmt.Errorf("%w: r is zero or not below the curve order", ErrRecover)
	errRecoverS     = fmt.Errorf("%w: s is zero", ErrRecover)
	errRecoverPoint = fmt.Errorf("%w: r is not the x coordinate of a curve point, or the key would be the point at infinity", ErrRecover)
)

// secpRecoverer recovers the compressed public key for r‖s (64 bytes) with
// recovery id 0 or 1 over digest. The caller has checked that r and s are
// in [1, n) and s ≤ n/2. It reports false when no key recovers.
type secpRecoverer func(out *[33]byte, rs *[64]byte, recid byte, digest *koinos.Digest) bool

// secpImpl is one implementation of secpRecoverer.
type secpImpl struct {
	name    string
	recover secpRecoverer
}

// secpDecred is always built: it is the pure-Go fallback and the reference
// the cgo implementation is tested against.
var secpDecred = secpImpl{name: "decred", recover: recoverDecred}

// secpImpls lists the implementations built into this binary, the default
// first (set by secp256k1_cgo.go or secp256k1_purego.go).
func secpImpls() []secpImpl { return secpBuilt }

// Secp256k1Implementation names the secp256k1 implementation in use:
// "libsecp256k1" (cgo) or "decred" (pure Go).
func Secp256k1Implementation() string { return secpBuilt[0].name }

// RecoverSecp256k1 recovers the address that produced a Koinos compact
// signature over digest, applying Koinos's rules exactly:
//   - byte 0 must be in [31, 33] and the recovery id is byte0 >> 5, so 33
//     decodes as recovery id 1, as koinos-crypto-cpp does;
//   - s must be canonical, at most n/2 (BIP-62 low-S), so a signature has
//     one valid form;
//   - r and s must be in [1, n), and a key must recover from them.
//
// Koinos's C++ compares s against n/2 with memcmp on a little-endian
// integer, which lets some high-S values through; Ember enforces the rule
// that comparison intends. Every koilib and Koinos signer emits low-S.
func RecoverSecp256k1(sig []byte, digest koinos.Digest) (koinos.Address, error) {
	pub, err := RecoverSecp256k1Key(sig, digest)
	if err != nil {
		return koinos.Address{}, err
	}
	return koinos.AddressFromKey(pub[:]), nil
}

// RecoverSecp256k1Key is RecoverSecp256k1 returning the 33-byte compressed
// public key instead of its address (callers that cache addresses by key
// use it).
func RecoverSecp256k1Key(sig []byte, digest koinos.Digest) ([33]byte, error) {
	return recoverWith(secpBuilt[0].recover, sig, &digest)
}

// checkSecp256k1 applies the Koinos rules that need no curve arithmetic and
// splits the signature into r‖s and the recovery id.
func checkSecp256k1(sig []byte) (rs [64]byte, recid byte, err error) {
	if len(sig) != Secp256k1SigSize {
		return rs, 0, ErrSignatureForm
	}
	if sig[0] < 31 || sig[0] > 33 {
		return rs, 0, ErrRecoveryID
	}
	var r, s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(sig[33:65]); overflow || s.IsOverHalfOrder() {
		return rs, 0, ErrHighS
	}
	if overflow := r.SetByteSlice(sig[1:33]); overflow || r.IsZero() {
		return rs, 0, errRecoverR
	}
	if s.IsZero() {
		return rs, 0, errRecoverS
	}
	copy(rs[:], sig[1:65])
	return rs, sig[0] >> 5, nil
}

func recoverWith(rec secpRecoverer, sig []byte, digest *koinos.Digest) ([33]byte, error) {
	var pub [33]byte
	rs, recid, err := checkSecp256k1(sig)
	if err != nil {
		return pub, err
	}
	if !rec(&pub, &rs, recid, digest) {
		return pub, errRecoverPoint
	}
	return pub, nil
}

// recoverDecred recovers with decred's pure-Go RecoverCompact, whose
// header byte 27 + 4 + recid means "compressed key, recovery id recid".
func recoverDecred(out *[33]byte, rs *[64]byte, recid byte, digest *koinos.Digest) bool {
	var buf [Secp256k1SigSize]byte
	buf[0] = 27 + 4 + recid
	copy(buf[1:], rs[:])
	pub, _, err := ecdsa.RecoverCompact(buf[:], digest[:])
	if err != nil {
		return false
	}
	copy(out[:], pub.SerializeCompressed())
	return true
}
