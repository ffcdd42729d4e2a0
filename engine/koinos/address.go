package koinos

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/mr-tron/base58"
	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // Koinos addresses are defined with RIPEMD-160.
)

// AddressSize is the length of a Koinos address: version ‖ hash160 ‖ checksum.
const AddressSize = 25

// addressVersion is the version byte of every Koinos address and contract id.
const addressVersion = 0x00

// Address is a 25-byte Koinos address (or contract id). Its zero value is
// not a valid address; use ParseAddress or AddressFromKey.
type Address [AddressSize]byte

// Errors from ParseAddress and DecodeAddress.
var (
	ErrAddressLength   = errors.New("koinos: address must be 25 bytes")
	ErrAddressChecksum = errors.New("koinos: address checksum mismatch")
	ErrAddressVersion  = errors.New("koinos: address version byte must be 0x00")
	ErrAddressBase58   = errors.New("koinos: address is not valid base58")
)

// AddressFromKey derives the address of a public key the Koinos way:
// 0x00 ‖ ripemd160(sha256(key)) ‖ first 4 bytes of sha256(sha256(those 21
// bytes)). key is the 33-byte compressed secp256k1 key, or the 32-byte
// Ed25519 key for the fast lane.
func AddressFromKey(key []byte) Address {
	h := sha256.Sum256(key)
	r := ripemd160.New()
	r.Write(h[:])
	var a Address
	a[0] = addressVersion
	r.Sum(a[1:1])
	setChecksum(&a)
	return a
}

// AddressFromHash160 builds an address around a 20-byte hash (used for
// contract ids derived from names in genesis).
func AddressFromHash160(h [20]byte) Address {
	var a Address
	a[0] = addressVersion
	copy(a[1:21], h[:])
	setChecksum(&a)
	return a
}

func setChecksum(a *Address) {
	c := sha256.Sum256(a[:21])
	c = sha256.Sum256(c[:])
	copy(a[21:], c[:4])
}

// ParseAddress validates raw address bytes: length, version and checksum.
func ParseAddress(b []byte) (Address, error) {
	var a Address
	if len(b) != AddressSize {
		return a, fmt.Errorf("%w, got %d", ErrAddressLength, len(b))
	}
	copy(a[:], b)
	if a[0] != addressVersion {
		return a, ErrAddressVersion
	}
	var want Address
	copy(want[:], b)
	setChecksum(&want)
	if !bytes.Equal(want[21:], a[21:]) {
		return a, ErrAddressChecksum
	}
	return a, nil
}

// AddressShape checks only an address's length and version byte, not its
// checksum, for callers that establish validity another way (an address
// equal to a signer's derived address, or one already in state, was
// checked when it was made). Everyone else uses ParseAddress.
func AddressShape(b []byte) (Address, bool) {
	var a Address
	if len(b) != AddressSize || b[0] != addressVersion {
		return a, false
	}
	copy(a[:], b)
	return a, true
}

// DecodeAddress parses a base58 address string.
func DecodeAddress(s string) (Address, error) {
	b, err := base58.Decode(s)
	if err != nil || len(s) == 0 {
		return Address{}, fmt.Errorf("%w: %q", ErrAddressBase58, s)
	}
	return ParseAddress(b)
}

// String returns the base58 form of a.
func (a Address) String() string { return base58.Encode(a[:]) }

// Bytes returns a copy of a as a slice, as protobuf fields want it.
func (a Address) Bytes() []byte { return append([]byte(nil), a[:]...) }

// IsZero reports whether a is the zero value (no address).
func (a Address) IsZero() bool { return a == Address{} }
