//go:build cgo && !purego

package keys

import gethsecp "github.com/ethereum/go-ethereum/crypto/secp256k1"

// rawLibsecpRecover is go-ethereum's binding called directly, for
// BenchmarkVerifySecp256k1.
func rawLibsecpRecover() func(sig, digest []byte) bool {
	return func(sig, digest []byte) bool {
		var buf [65]byte
		copy(buf[:], sig[1:])
		buf[64] = sig[0] >> 5
		_, err := gethsecp.RecoverPubkey(digest, buf[:])
		return err == nil
	}
}
