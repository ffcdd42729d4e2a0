package koinos

import (
	"encoding/binary"
	"errors"
)

// A nonce travels as the serialized koinos.chain.value_type with its
// uint64_value member set (field 5, varint): 0x28 ‖ varint(n). koilib builds
// it the same way (Provider.getNextNonce), so "KAE=" is nonce 1.
const nonceTag = 5<<3 | 0 // field 5, wire type varint

// ErrNonceEncoding reports nonce bytes that are not a canonical
// value_type{uint64_value}.
var ErrNonceEncoding = errors.New("koinos: nonce must be a serialized value_type with uint64_value set (e.g. \"KAE=\" for 1)")

// EncodeNonce returns the value_type encoding of n.
func EncodeNonce(n uint64) []byte {
	return binary.AppendUvarint([]byte{nonceTag}, n)
}

// DecodeNonce parses a nonce. It accepts only the canonical encoding (one
// field, minimal varint, nothing after it): the nonce bytes are part of the
// signed header, so two encodings of one number must not both be valid.
func DecodeNonce(b []byte) (uint64, error) {
	if len(b) < 2 || b[0] != nonceTag {
		return 0, ErrNonceEncoding
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || 1+k != len(b) || len(binary.AppendUvarint(nil, n)) != k {
		return 0, ErrNonceEncoding
	}
	return n, nil
}
