package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"

	"github.com/emberchain/ember/engine/koinos"
)

// groupOrderL is the order of the Ed25519 base point, little-endian.
var groupOrderL = func() []byte {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	return le32(l)
}()

func le32(x *big.Int) []byte {
	b := be32(x)
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

func fromLE(b []byte) *big.Int {
	r := bytes.Clone(b)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return new(big.Int).SetBytes(r)
}

func fastLane(pub, raw []byte) []byte {
	out := []byte{ed25519Marker}
	out = append(out, pub...)
	return append(out, raw...)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkBatchAgrees verifies items alone with Verify, then each inside
// batches of several sizes among valid signatures (fill), with and without
// key caching, and fails unless every result is identical.
func checkBatchAgrees(t *testing.T, what string, adversarial []Item, rng *rand.Rand, fill []Item) {
	t.Helper()
	alone := func(it Item) Item {
		it.Addr, it.Err = Verify(it.Sig, it.Digest)
		return it
	}
	want := make([]Item, len(adversarial))
	for i, it := range adversarial {
		want[i] = alone(it)
	}
	fillWant := make([]Item, len(fill))
	for i, it := range fill {
		fillWant[i] = alone(it)
	}
	for _, cacheSize := range []int{-1, 3} {
		v := NewVerifier(cacheSize)
		for _, size := range []int{1, 2, 17, 65} {
			for i, adv := range adversarial {
				batch := make([]Item, size)
				exp := make([]Item, size)
				pos := rng.IntN(size)
				for j := range batch {
					if j == pos {
						batch[j], exp[j] = Item{Sig: adv.Sig, Digest: adv.Digest}, want[i]
						continue
					}
					f := rng.IntN(len(fill))
					batch[j], exp[j] = Item{Sig: fill[f].Sig, Digest: fill[f].Digest}, fillWant[f]
				}
				v.VerifyBatch(batch)
				for j := range batch {
					if batch[j].Addr != exp[j].Addr || batch[j].Err != exp[j].Err {
						t.Fatalf("%s #%d in a batch of %d (cache %d), entry %d: batch says (%s, %v), alone (%s, %v)",
							what, i, size, cacheSize, j, batch[j].Addr, batch[j].Err, exp[j].Addr, exp[j].Err)
					}
				}
			}
		}
	}
}

func validEd25519(n int, rng *rand.Rand) []Item {
	out := make([]Item, n)
	for i := range out {
		var seed [32]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		k := Ed25519FromSeed(seed[:])
		for j := range out[i].Digest {
			out[i].Digest[j] = byte(rng.Uint32())
		}
		out[i].Sig = k.Sign(out[i].Digest)
	}
	return out
}

// The "Taming the many EdDSAs" vectors (ed25519-speccheck; 32-byte
// messages, so they are digests here): the fast lane's rules give the
// expected answer alone, and the same answer inside any batch.
func TestEd25519Speccheck(t *testing.T) {
	raw, err := os.ReadFile("testdata/ed25519_speccheck.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Case       string `json:"case"`
		Message    string `json:"message"`
		PubKey     string `json:"pub_key"`
		Signature  string `json:"signature"`
		EmberValid bool   `json:"ember_valid"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var items []Item
	for i, c := range cases {
		it := Item{Sig: fastLane(unhex(t, c.PubKey), unhex(t, c.Signature)), Digest: koinos.Digest(unhex(t, c.Message))}
		_, err := VerifyEd25519(it.Sig, it.Digest)
		if (err == nil) != c.EmberValid {
			t.Fatalf("case %d (%s): valid=%v, want %v", i, c.Case, err == nil, c.EmberValid)
		}
		items = append(items, it)
	}
	checkBatchAgrees(t, "speccheck", items, rng, validEd25519(32, rng))
}

// Small-order and non-canonical points as A and R (the ZIP-215 set: the
// eight small-order points and their non-canonical encodings), S ≥ L, S+L
// twins of valid signatures, non-canonical R: rejected alone and in every
// batch, and valid neighbours stay valid.
func TestEd25519Adversarial(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	encodings := []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000080",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	}
	valid := validEd25519(64, rng)
	var adv []Item
	d := koinos.Digest(bytes.Repeat([]byte{0x5a}, 32))
	zero := make([]byte, 32)
	for _, a := range encodings {
		for _, r := range encodings {
			adv = append(adv, Item{Sig: fastLane(unhex(t, a), append(unhex(t, r), zero...)), Digest: d})
		}
		// A small-order A with S = 0 and R = identity: valid under
		// FIPS 186-5 for every message, refused by the fast lane.
		adv = append(adv, Item{Sig: fastLane(unhex(t, a), append(unhex(t, encodings[2]), zero...)), Digest: valid[0].Digest})
	}
	for _, v := range valid[:8] {
		pub, raw := v.Sig[1:33], v.Sig[33:]
		s := fromLE(raw[32:])
		sPlusL := new(big.Int).Add(s, fromLE(groupOrderL))
		adv = append(adv,
			Item{Sig: fastLane(pub, append(bytes.Clone(raw[:32]), le32(sPlusL)...)), Digest: v.Digest},
			Item{Sig: fastLane(pub, append(bytes.Clone(raw[:32]), groupOrderL...)), Digest: v.Digest},
			Item{Sig: fastLane(pub, append(bytes.Clone(raw[:32]), bytes.Repeat([]byte{0xff}, 32)...)), Digest: v.Digest},
			Item{Sig: v.Sig, Digest: koinos.Digest(bytes.Repeat([]byte{1}, 32))}, // wrong digest
		)
		for _, r := range encodings {
			adv = append(adv, Item{Sig: fastLane(pub, append(unhex(t, r), raw[32:]...)), Digest: v.Digest})
		}
		// Bit flips anywhere in the key, R or S.
		for i := 0; i < 4; i++ {
			s := bytes.Clone(v.Sig)
			bit := 8 + rng.IntN(8*(len(s)-1))
			s[bit/8] ^= 1 << (bit % 8)
			adv = append(adv, Item{Sig: s, Digest: v.Digest})
		}
	}
	// A key that is not a point, and an R that is not a point (y with no
	// x): found by trying.
	for y := byte(2); ; y++ {
		var c curve.CompressedEdwardsY
		c[0] = y
		var p curve.EdwardsPoint
		if _, err := p.SetCompressedY(&c); err != nil {
			adv = append(adv,
				Item{Sig: fastLane(c[:], valid[1].Sig[33:]), Digest: valid[1].Digest},
				Item{Sig: fastLane(valid[2].Sig[1:33], append(bytes.Clone(c[:]), valid[2].Sig[65:]...)), Digest: valid[2].Digest})
			break
		}
	}
	for i, it := range adv {
		if _, err := Verify(it.Sig, it.Digest); err == nil {
			t.Fatalf("adversarial signature %d verifies alone: %x", i, it.Sig)
		}
	}
	checkBatchAgrees(t, "adversarial", adv, rng, valid)
}

// The small-order list is exactly the canonical encodings of E[8].
func TestSmallOrderKeys(t *testing.T) {
	seen := map[[32]byte]bool{}
	for _, k := range smallOrderKeys {
		var c curve.CompressedEdwardsY
		copy(c[:], k[:])
		var p curve.EdwardsPoint
		if _, err := p.SetCompressedY(&c); err != nil || !p.IsSmallOrder() || !c.IsCanonicalVartime() {
			t.Fatalf("%x is not a canonical small-order point", k)
		}
		seen[k] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d distinct small-order encodings, want 8", len(seen))
	}
}

// Verifier.VerifyBatch equals Verify on random mixes of both schemes,
// valid and corrupted, in runs longer than one multiscalar batch, with a
// key cache small enough to evict.
func TestVerifierMatchesVerify(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var signers []Signer
	for i := 0; i < 12; i++ {
		seed := koinos.Sum256([]byte(fmt.Sprint("signer", i)))
		if i%3 == 0 {
			k, _ := Secp256k1FromBytes(seed[:])
			signers = append(signers, k)
		} else {
			signers = append(signers, Ed25519FromSeed(seed[:]))
		}
	}
	for _, cacheSize := range []int{-1, 2, 0} {
		v := NewVerifier(cacheSize)
		for round := 0; round < 30; round++ {
			n := 1 + rng.IntN(150)
			items := make([]Item, n)
			for i := range items {
				for j := range items[i].Digest {
					items[i].Digest[j] = byte(rng.Uint32())
				}
				sig := signers[rng.IntN(len(signers))].Sign(items[i].Digest)
				switch rng.IntN(6) {
				case 0:
					sig[rng.IntN(len(sig))] ^= byte(1 + rng.IntN(255))
				case 1:
					sig = sig[:rng.IntN(len(sig))]
				case 2:
					items[i].Digest[0] ^= 1
				}
				items[i].Sig = sig
			}
			v.VerifyBatch(items)
			for i, it := range items {
				a, err := Verify(it.Sig, it.Digest)
				if a != it.Addr || err != it.Err {
					t.Fatalf("cache %d round %d item %d: batch (%s, %v), Verify (%s, %v)", cacheSize, round, i, it.Addr, it.Err, a, err)
				}
			}
		}
		if st := v.Stats(); st.Ed25519Batches == 0 || st.Ed25519BatchFails == 0 || st.Secp256k1 == 0 {
			t.Fatalf("stats %+v: the test did not exercise batches, failures and secp256k1", st)
		}
	}
}
