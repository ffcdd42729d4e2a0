//go:build cgo && !purego

package keys

import (
	gethsecp "github.com/ethereum/go-ethereum/crypto/secp256k1"

	"github.com/emberchain/ember/engine/koinos"
)

// With cgo, Koinos recovery runs on libsecp256k1 (bitcoin-core's library,
// the one koinos-crypto-cpp links), through go-ethereum's binding: about
// 3x faster than decred's pure Go here (BenchmarkVerifySecp256k1). Build
// with -tags purego, or CGO_ENABLED=0, for a pure-Go binary.
var secpBuilt = []secpImpl{{name: "libsecp256k1", recover: recoverLibsecp}, secpDecred}

// recoverLibsecp recovers with libsecp256k1's secp256k1_ecdsa_recover. The
// binding takes r‖s‖recid and returns the 65-byte uncompressed key, which
// is compressed here (0x02 | parity of y, then x).
func recoverLibsecp(out *[33]byte, rs *[64]byte, recid byte, digest *koinos.Digest) bool {
	var sig [65]byte
	copy(sig[:], rs[:])
	sig[64] = recid
	pub, err := gethsecp.RecoverPubkey(digest[:], sig[:])
	if err != nil || len(pub) != 65 || pub[0] != 4 {
		return false
	}
	out[0] = 2 | pub[64]&1
	copy(out[1:], pub[1:33])
	return true
}
