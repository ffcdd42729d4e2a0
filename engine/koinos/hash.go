package koinos

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// Multihash code and length of sha2-256, the only hash Ember accepts in ids
// (Koinos's metadata/block_hash_code is sha2-256 on every live chain).
const (
	codeSHA256    = 0x12
	DigestSize    = sha256.Size
	MultihashSize = 2 + DigestSize // varint(0x12) ‖ varint(32) ‖ digest
)

// Digest is a raw sha2-256 digest.
type Digest [DigestSize]byte

// Sum256 hashes b.
func Sum256(b []byte) Digest { return sha256.Sum256(b) }

// Multihash returns the 34-byte multihash form of d (0x12 0x20 ‖ d).
func (d Digest) Multihash() []byte {
	out := make([]byte, MultihashSize)
	out[0], out[1] = codeSHA256, DigestSize
	copy(out[2:], d[:])
	return out
}

// AppendMultihash appends the multihash form of d to dst.
func (d Digest) AppendMultihash(dst []byte) []byte {
	dst = append(dst, codeSHA256, DigestSize)
	return append(dst, d[:]...)
}

// ErrMultihash reports an id that is not a 34-byte sha2-256 multihash.
var ErrMultihash = errors.New("koinos: id must be a 34-byte sha2-256 multihash (0x1220...)")

// ParseMultihash returns the digest inside a sha2-256 multihash.
func ParseMultihash(b []byte) (Digest, error) {
	var d Digest
	if len(b) != MultihashSize || b[0] != codeSHA256 || b[1] != DigestSize {
		if len(b) >= 2 && b[0] != codeSHA256 {
			return d, fmt.Errorf("%w: unsupported hash code 0x%x", ErrMultihash, b[0])
		}
		return d, ErrMultihash
	}
	copy(d[:], b[2:])
	return d, nil
}

// IsZeroMultihash reports whether b is the zero multihash (sha2-256 code
// and length, all-zero digest) that stands for "no previous block" in the
// first block's header.
func IsZeroMultihash(b []byte) bool {
	if len(b) != MultihashSize || b[0] != codeSHA256 || b[1] != DigestSize {
		return false
	}
	for _, c := range b[2:] {
		if c != 0 {
			return false
		}
	}
	return true
}

// ZeroMultihash is the previous-block id of the first block.
func ZeroMultihash() []byte { return Digest{}.Multihash() }

// MerkleRoot computes the Koinos merkle root of the leaves: a parent is
// sha256(left ‖ right), an odd last node is promoted unchanged to the next
// level (not duplicated), and the root of no leaves is sha256("").
// The leaves slice is used as scratch space and overwritten.
//
// The tree is built level by level from the left, so 2^k leaves starting
// at a multiple of 2^k form a whole subtree: the root of all the leaves is
// the root over the roots of consecutive 2^k-leaf chunks (the last chunk
// may be shorter). sigverify relies on this to hash a block's
// transactions in parallel parts (TestMerkleRootOfChunks).
func MerkleRoot(leaves []Digest) Digest {
	if len(leaves) == 0 {
		return sha256.Sum256(nil)
	}
	var buf [2 * DigestSize]byte
	for n := len(leaves); n > 1; n = (n + 1) / 2 {
		for i := 0; i < n; i += 2 {
			if i+1 < n {
				copy(buf[:DigestSize], leaves[i][:])
				copy(buf[DigestSize:], leaves[i+1][:])
				leaves[i/2] = sha256.Sum256(buf[:])
			} else {
				leaves[i/2] = leaves[i]
			}
		}
	}
	return leaves[0]
}
