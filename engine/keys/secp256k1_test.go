package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/kjson"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

var (
	curveN     = secp256k1.S256().N
	curveP     = secp256k1.S256().P
	curveHalfN = new(big.Int).Rsh(curveN, 1)
)

func be32(x *big.Int) []byte {
	var b [32]byte
	x.FillBytes(b[:])
	return b[:]
}

func compactSig(b0 byte, r, s []byte) []byte {
	out := make([]byte, 0, Secp256k1SigSize)
	out = append(out, b0)
	out = append(out, r...)
	return append(out, s...)
}

// recoverAll recovers sig with every built implementation and fails the
// test unless they all return the same key and the same error. It returns
// the common result.
func recoverAll(t *testing.T, what string, sig []byte, d koinos.Digest) ([33]byte, error) {
	t.Helper()
	impls := secpImpls()
	pub0, err0 := recoverWith(impls[0].recover, sig, &d)
	for _, im := range impls[1:] {
		pub, err := recoverWith(im.recover, sig, &d)
		if pub != pub0 || err != err0 {
			t.Fatalf("%s: %s recovers %x (%v), %s recovers %x (%v)\nsig %x\ndigest %x",
				what, impls[0].name, pub0, err0, im.name, pub, err, sig, d)
		}
	}
	// The exported path agrees with the default implementation.
	if pub, err := RecoverSecp256k1Key(sig, d); pub != pub0 || err != err0 {
		t.Fatalf("%s: RecoverSecp256k1Key differs from %s", what, impls[0].name)
	}
	return pub0, err0
}

type koilibVector struct {
	Description string          `json:"description"`
	Address     string          `json:"address"`
	Transaction json.RawMessage `json:"transaction"`
}

// Both implementations recover koilib's signers from koilib's transactions.
func TestSecp256k1KoilibVectors(t *testing.T) {
	t.Logf("secp256k1 implementations built: %d, default %s", len(secpImpls()), Secp256k1Implementation())
	raw, err := os.ReadFile("../koinos/testdata/koilib_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []koilibVector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vectors {
		var tx protocol.Transaction
		if err := kjson.Unmarshal(v.Transaction, &tx); err != nil {
			t.Fatal(err)
		}
		id := koinos.TransactionID(tx.Header)
		for _, im := range secpImpls() {
			pub, err := recoverWith(im.recover, tx.Signatures[0], &id)
			if err != nil {
				t.Fatalf("%s: %s: %v", v.Description, im.name, err)
			}
			if got := koinos.AddressFromKey(pub[:]).String(); got != v.Address {
				t.Fatalf("%s: %s recovers %s, koilib signed with %s", v.Description, im.name, got, v.Address)
			}
		}
		// Every other header byte, the high-S twin and bit flips: the
		// implementations agree on each.
		sig := tx.Signatures[0]
		for b0 := 0; b0 < 256; b0++ {
			s := bytes.Clone(sig)
			s[0] = byte(b0)
			recoverAll(t, fmt.Sprintf("header byte %d", b0), s, id)
		}
		for bit := 0; bit < 8*Secp256k1SigSize; bit++ {
			s := bytes.Clone(sig)
			s[bit/8] ^= 1 << (bit % 8)
			recoverAll(t, fmt.Sprintf("bit %d flipped", bit), s, id)
		}
	}
}

// Random keys and digests, and every adversarial form: all implementations
// agree, and the Koinos rules give the expected answers.
func TestSecp256k1ImplementationsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randDigest := func() (d koinos.Digest) {
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		return d
	}
	for i := 0; i < 300; i++ {
		var secret [32]byte
		for j := range secret {
			secret[j] = byte(rng.Uint32())
		}
		k, err := Secp256k1FromBytes(secret[:])
		if err != nil {
			continue
		}
		d := randDigest()
		sig := k.Sign(d)
		pub, err := recoverAll(t, "valid", sig, d)
		if err != nil || !bytes.Equal(pub[:], k.pub) {
			t.Fatalf("valid signature: %v", err)
		}
		r, s := new(big.Int).SetBytes(sig[1:33]), new(big.Int).SetBytes(sig[33:])

		// Recovery id: byte0 >> 5, so 32 and 33 both mean 1.
		other := byte(63 - sig[0]) // 31 <-> 32
		alt := compactSig(other, sig[1:33], sig[33:])
		if pub2, err := recoverAll(t, "other recid", alt, d); err == nil && pub2 == pub {
			t.Fatal("the other recovery id recovered the same key")
		}
		p32, e32 := recoverAll(t, "recid 32", compactSig(32, sig[1:33], sig[33:]), d)
		p33, e33 := recoverAll(t, "recid 33", compactSig(33, sig[1:33], sig[33:]), d)
		if p32 != p33 || e32 != e33 {
			t.Fatal("header bytes 32 and 33 must both mean recovery id 1")
		}
		for _, b0 := range []byte{0, 27, 28, 29, 30, 34, 35, 63, 64, 0xED, 0xFF} {
			if _, err := recoverAll(t, "bad recid", compactSig(b0, sig[1:33], sig[33:]), d); err != ErrRecoveryID {
				t.Fatalf("header byte %d: %v, want ErrRecoveryID", b0, err)
			}
		}

		// s: high-S twin, boundaries, zero, order and above.
		highS := new(big.Int).Sub(curveN, s)
		mustErr(t, "high-S twin", compactSig(sig[0], sig[1:33], be32(highS)), d, ErrHighS)
		mustErr(t, "s = n/2 + 1", compactSig(sig[0], sig[1:33], be32(new(big.Int).Add(curveHalfN, big.NewInt(1)))), d, ErrHighS)
		mustErr(t, "s = n", compactSig(sig[0], sig[1:33], be32(curveN)), d, ErrHighS)
		mustErr(t, "s = 2^256-1", compactSig(sig[0], sig[1:33], bytes.Repeat([]byte{0xff}, 32)), d, ErrHighS)
		mustErr(t, "s = 0", compactSig(sig[0], sig[1:33], make([]byte, 32)), d, errRecoverS)
		recoverAll(t, "s = n/2", compactSig(sig[0], sig[1:33], be32(curveHalfN)), d)
		recoverAll(t, "s = 1", compactSig(sig[0], sig[1:33], be32(big.NewInt(1))), d)

		// r: zero, order, above the order, the field prime, r + n.
		mustErr(t, "r = 0", compactSig(sig[0], make([]byte, 32), sig[33:]), d, errRecoverR)
		mustErr(t, "r = n", compactSig(sig[0], be32(curveN), sig[33:]), d, errRecoverR)
		mustErr(t, "r = p", compactSig(sig[0], be32(curveP), sig[33:]), d, errRecoverR)
		mustErr(t, "r = 2^256-1", compactSig(sig[0], bytes.Repeat([]byte{0xff}, 32), sig[33:]), d, errRecoverR)
		if rn := new(big.Int).Add(r, curveN); rn.BitLen() <= 256 {
			mustErr(t, "r + n", compactSig(sig[0], be32(rn), sig[33:]), d, errRecoverR)
		}
		recoverAll(t, "r = n-1", compactSig(sig[0], be32(new(big.Int).Sub(curveN, big.NewInt(1))), sig[33:]), d)
		recoverAll(t, "r = 1", compactSig(sig[0], be32(big.NewInt(1)), sig[33:]), d)

		// Random r and low s: about half the r are not x coordinates.
		rr, sb := make([]byte, 32), make([]byte, 32)
		for j := range rr {
			rr[j], sb[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		rs := new(big.Int).Mod(new(big.Int).SetBytes(sb), curveHalfN)
		recoverAll(t, "random r, s", compactSig(31+byte(i%3), rr, be32(rs)), d)

		// Digest edge cases: zero, all ones, the order (reduced mod n).
		for _, dd := range []koinos.Digest{{}, koinos.Digest(bytes.Repeat([]byte{0xff}, 32)), koinos.Digest(be32(curveN))} {
			recoverAll(t, "digest edge", sig, dd)
		}
	}
}

func mustErr(t *testing.T, what string, sig []byte, d koinos.Digest, want error) {
	t.Helper()
	if _, err := recoverAll(t, what, sig, d); err != want {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// A signature crafted so that the recovered key would be the point at
// infinity (s·R = e·G, with R = kG and e = s·k) is refused by both.
func TestSecp256k1RecoversInfinity(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	made := 0
	for made < 20 {
		var kb, sb [32]byte
		for j := range kb {
			kb[j], sb[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		var k, s, e secp256k1.ModNScalar
		if k.SetBytes(&kb) != 0 || k.IsZero() {
			continue
		}
		s.SetBytes(&sb)
		if s.IsZero() || s.IsOverHalfOrder() {
			continue
		}
		var R secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(&k, &R)
		R.ToAffine()
		var rx secp256k1.ModNScalar
		xb := R.X.Bytes()
		if rx.SetBytes(xb) != 0 {
			continue // x ≥ n: not expressible with recovery id 0 or 1
		}
		e.Mul2(&s, &k)
		d := koinos.Digest(e.Bytes())
		recid := byte(31)
		if R.Y.IsOdd() {
			recid = 32
		}
		sbytes := s.Bytes()
		sig := compactSig(recid, xb[:], sbytes[:])
		if _, err := recoverAll(t, "infinity", sig, d); !errors.Is(err, ErrRecover) || err != errRecoverPoint {
			t.Fatalf("recovered a key from a signature whose key is the point at infinity: %v", err)
		}
		made++
	}
}
