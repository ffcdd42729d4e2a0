package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/mr-tron/base58"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/emberchain/ember/engine/koinos"
)

// Scheme names a signature scheme.
type Scheme uint8

// The schemes Ember accepts.
const (
	SchemeUnknown Scheme = iota
	SchemeSecp256k1
	SchemeEd25519
)

func (s Scheme) String() string {
	switch s {
	case SchemeSecp256k1:
		return "secp256k1"
	case SchemeEd25519:
		return "ed25519"
	}
	return "unknown"
}

// ParseScheme parses "secp256k1" or "ed25519".
func ParseScheme(s string) (Scheme, error) {
	switch strings.ToLower(s) {
	case "secp256k1":
		return SchemeSecp256k1, nil
	case "ed25519":
		return SchemeEd25519, nil
	}
	return SchemeUnknown, fmt.Errorf("keys: unknown scheme %q (want secp256k1 or ed25519)", s)
}

// Signature sizes and the fast-lane marker.
const (
	Secp256k1SigSize = 65
	Ed25519SigSize   = 1 + ed25519.PublicKeySize + ed25519.SignatureSize
	ed25519Marker    = 0xED
)

// Errors returned for malformed or invalid signatures. They do not depend
// on which secp256k1 implementation or which Ed25519 path (single or batch)
// ran: every path returns the same error for the same input.
var (
	ErrSignatureForm = errors.New("keys: signature is neither a 65-byte secp256k1 compact signature nor a 97-byte Ed25519 fast-lane signature")
	ErrRecoveryID    = errors.New("keys: secp256k1 recovery id byte must be 31, 32 or 33")
	ErrHighS         = errors.New("keys: secp256k1 signature is not canonical (s must be at most n/2)")
	ErrRecover       = errors.New("keys: secp256k1 public key cannot be recovered from signature")
	ErrEd25519       = errors.New("keys: Ed25519 signature does not verify")
)

// SchemeOf tells which scheme a signature uses from its form alone.
func SchemeOf(sig []byte) Scheme {
	switch {
	case len(sig) == Secp256k1SigSize:
		return SchemeSecp256k1
	case len(sig) == Ed25519SigSize && sig[0] == ed25519Marker:
		return SchemeEd25519
	}
	return SchemeUnknown
}

// Signer is a private key of either scheme.
type Signer interface {
	Scheme() Scheme
	// PublicKey is the 33-byte compressed secp256k1 key or the 32-byte
	// Ed25519 key.
	PublicKey() []byte
	Address() koinos.Address
	// Sign signs a 32-byte digest (of a transaction or block id) and
	// returns the signature in the scheme's wire form.
	Sign(digest koinos.Digest) []byte
	// String returns the key in text form for a key file: WIF for
	// secp256k1, "ed25519:" + base58(seed) for Ed25519. It is secret.
	String() string
}

// Generate creates a new random key of the given scheme.
func Generate(s Scheme) (Signer, error) {
	switch s {
	case SchemeSecp256k1:
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, fmt.Errorf("keys: generate secp256k1: %w", err)
		}
		return newSecp(k), nil
	case SchemeEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keys: generate ed25519: %w", err)
		}
		return &Ed25519Key{priv: priv}, nil
	}
	return nil, fmt.Errorf("keys: cannot generate a key for scheme %v", s)
}

// Parse reads a key in the text form that Signer.String writes.
func Parse(text string) (Signer, error) {
	text = strings.TrimSpace(text)
	if seed, ok := strings.CutPrefix(text, "ed25519:"); ok {
		b, err := base58.Decode(seed)
		if err != nil || len(b) != ed25519.SeedSize {
			return nil, errors.New("keys: an ed25519 key is \"ed25519:\" followed by the base58 of a 32-byte seed")
		}
		return Ed25519FromSeed(b), nil
	}
	return ParseWIF(text)
}

// --- secp256k1 ---------------------------------------------------------

// Secp256k1Key is a secp256k1 private key, as koilib's Signer holds it.
type Secp256k1Key struct {
	priv *secp256k1.PrivateKey
	pub  []byte
	addr koinos.Address
}

func newSecp(k *secp256k1.PrivateKey) *Secp256k1Key {
	pub := k.PubKey().SerializeCompressed()
	return &Secp256k1Key{priv: k, pub: pub, addr: koinos.AddressFromKey(pub)}
}

// Secp256k1FromBytes builds a key from its 32-byte secret.
func Secp256k1FromBytes(secret []byte) (*Secp256k1Key, error) {
	if len(secret) != 32 {
		return nil, errors.New("keys: a secp256k1 secret is 32 bytes")
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(secret); overflow || s.IsZero() {
		return nil, errors.New("keys: secp256k1 secret is zero or not below the curve order")
	}
	return newSecp(secp256k1.NewPrivateKey(&s)), nil
}

// Scheme implements Signer.
func (k *Secp256k1Key) Scheme() Scheme { return SchemeSecp256k1 }

// PublicKey implements Signer: the 33-byte compressed key.
func (k *Secp256k1Key) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// Address implements Signer.
func (k *Secp256k1Key) Address() koinos.Address { return k.addr }

// Sign implements Signer: a deterministic (RFC 6979), low-S compact
// signature with header byte 31+recid, exactly what koilib produces.
func (k *Secp256k1Key) Sign(digest koinos.Digest) []byte {
	// decred's compact form is 27 + recid + 4 for a compressed key, which is
	// Koinos's 31 + recid.
	return ecdsa.SignCompact(k.priv, digest[:], true)
}

// Secret returns the 32-byte secret.
func (k *Secp256k1Key) Secret() []byte { return k.priv.Serialize() }

// String implements Signer: the compressed-key WIF that koilib's
// Signer.fromWif reads.
func (k *Secp256k1Key) String() string { return EncodeWIF(k.priv.Serialize()) }

// EncodeWIF encodes a secp256k1 secret as a compressed-key WIF
// (0x80 ‖ secret ‖ 0x01 ‖ checksum, base58), as koilib's bitcoinEncode does.
func EncodeWIF(secret []byte) string {
	b := make([]byte, 0, 38)
	b = append(b, 0x80)
	b = append(b, secret...)
	b = append(b, 0x01)
	c := koinos.Sum256(b)
	c = koinos.Sum256(c[:])
	return base58.Encode(append(b, c[:4]...))
}

// ParseWIF decodes a WIF secp256k1 key, compressed (0x80 ‖ 32 ‖ 0x01) or
// uncompressed (0x80 ‖ 32); both name the same secret, and Ember always uses
// the compressed public key, as koilib does by default.
func ParseWIF(s string) (*Secp256k1Key, error) {
	b, err := base58.Decode(s)
	if err != nil || (len(b) != 37 && len(b) != 38) || b[0] != 0x80 || (len(b) == 38 && b[33] != 0x01) {
		return nil, errors.New("keys: not a WIF private key (base58 of 0x80 ‖ secret ‖ [0x01] ‖ checksum)")
	}
	body, sum := b[:len(b)-4], b[len(b)-4:]
	c := koinos.Sum256(body)
	c = koinos.Sum256(c[:])
	if string(c[:4]) != string(sum) {
		return nil, errors.New("keys: WIF checksum mismatch")
	}
	return Secp256k1FromBytes(body[1:33])
}

// --- Ed25519 fast lane --------------------------------------------------

// Ed25519Key is an Ed25519 fast-lane key.
type Ed25519Key struct {
	priv ed25519.PrivateKey
}

// Ed25519FromSeed builds a key from a 32-byte seed.
func Ed25519FromSeed(seed []byte) *Ed25519Key {
	return &Ed25519Key{priv: ed25519.NewKeyFromSeed(seed)}
}

// Scheme implements Signer.
func (k *Ed25519Key) Scheme() Scheme { return SchemeEd25519 }

// PublicKey implements Signer: the 32-byte key.
func (k *Ed25519Key) PublicKey() []byte {
	return append([]byte(nil), k.priv[ed25519.SeedSize:]...)
}

// Address implements Signer.
func (k *Ed25519Key) Address() koinos.Address {
	return koinos.AddressFromKey(k.priv[ed25519.SeedSize:])
}

// Sign implements Signer: 0xED ‖ public key ‖ Ed25519 signature of digest.
func (k *Ed25519Key) Sign(digest koinos.Digest) []byte {
	out := make([]byte, 0, Ed25519SigSize)
	out = append(out, ed25519Marker)
	out = append(out, k.priv[ed25519.SeedSize:]...)
	return append(out, ed25519.Sign(k.priv, digest[:])...)
}

// String implements Signer.
func (k *Ed25519Key) String() string { return "ed25519:" + base58.Encode(k.priv.Seed()) }

// SplitEd25519 returns the public key and raw signature of a fast-lane
// signature without verifying it.
func SplitEd25519(sig []byte) (pub, raw []byte, err error) {
	if SchemeOf(sig) != SchemeEd25519 {
		return nil, nil, ErrSignatureForm
	}
	return sig[1 : 1+ed25519.PublicKeySize], sig[1+ed25519.PublicKeySize:], nil
}

// Verify checks one signature of either scheme over digest and returns the
// address it stands for.
func Verify(sig []byte, digest koinos.Digest) (koinos.Address, error) {
	switch SchemeOf(sig) {
	case SchemeSecp256k1:
		return RecoverSecp256k1(sig, digest)
	case SchemeEd25519:
		return VerifyEd25519(sig, digest)
	}
	return koinos.Address{}, ErrSignatureForm
}
