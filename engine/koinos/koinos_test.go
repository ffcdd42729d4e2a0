package koinos_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/kjson"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

func digest(s string) koinos.Digest { return sha256.Sum256([]byte(s)) }

func pair(a, b koinos.Digest) koinos.Digest {
	return sha256.Sum256(append(append([]byte{}, a[:]...), b[:]...))
}

// The tree promotes an odd node unchanged instead of duplicating it.
func TestMerkleRoot(t *testing.T) {
	a, b, c, d, e := digest("a"), digest("b"), digest("c"), digest("d"), digest("e")
	tests := []struct {
		name   string
		leaves []koinos.Digest
		want   koinos.Digest
	}{
		{"empty is sha256 of nothing", nil, sha256.Sum256(nil)},
		{"one leaf is itself", []koinos.Digest{a}, a},
		{"two", []koinos.Digest{a, b}, pair(a, b)},
		{"three promotes c", []koinos.Digest{a, b, c}, pair(pair(a, b), c)},
		{"four", []koinos.Digest{a, b, c, d}, pair(pair(a, b), pair(c, d))},
		{"five promotes e twice", []koinos.Digest{a, b, c, d, e}, pair(pair(pair(a, b), pair(c, d)), e)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := koinos.MerkleRoot(append([]koinos.Digest(nil), tt.leaves...)); got != tt.want {
				t.Fatalf("root = %x, want %x", got, tt.want)
			}
		})
	}
}

// The root over the roots of consecutive 2^k-leaf chunks is the root of
// all the leaves, for every leaf count and chunk size (MerkleRoot's doc).
func TestMerkleRootOfChunks(t *testing.T) {
	var leaves []koinos.Digest
	for n := 0; n <= 70; n++ {
		if n > 0 {
			leaves = append(leaves, digest(fmt.Sprint(n)))
		}
		want := koinos.MerkleRoot(slices.Clone(leaves))
		for chunk := 1; chunk <= 128; chunk *= 2 {
			var roots []koinos.Digest
			for from := 0; from < n; from += chunk {
				roots = append(roots, koinos.MerkleRoot(slices.Clone(leaves[from:min(from+chunk, n)])))
			}
			if got := koinos.MerkleRoot(roots); got != want {
				t.Fatalf("%d leaves in chunks of %d: root %x, want %x", n, chunk, got, want)
			}
		}
	}
}

func TestMultihash(t *testing.T) {
	d := digest("x")
	mh := d.Multihash()
	if len(mh) != 34 || mh[0] != 0x12 || mh[1] != 0x20 {
		t.Fatalf("bad multihash prefix %x", mh[:2])
	}
	got, err := koinos.ParseMultihash(mh)
	if err != nil || got != d {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, mh[:33], append([]byte{0x13}, mh[1:]...), append(append([]byte{}, mh...), 0)} {
		if _, err := koinos.ParseMultihash(bad); err == nil {
			t.Errorf("ParseMultihash(%x) accepted", bad)
		}
	}
	if !koinos.IsZeroMultihash(koinos.ZeroMultihash()) || koinos.IsZeroMultihash(mh) {
		t.Fatal("IsZeroMultihash")
	}
}

func TestAddress(t *testing.T) {
	// A known koilib address (koinos KOIN contract id on mainnet).
	const s = "15DJN4a8SgrbGhhGksSBASiSYjGnMU8dGL"
	a, err := koinos.DecodeAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != s {
		t.Fatalf("round trip: %s", a)
	}
	bad := a
	bad[24] ^= 1
	if _, err := koinos.ParseAddress(bad[:]); err == nil {
		t.Fatal("checksum not checked")
	}
	for _, in := range []string{"", "0OIl", "1", s + "1"} {
		if _, err := koinos.DecodeAddress(in); err == nil {
			t.Errorf("DecodeAddress(%q) accepted", in)
		}
	}
}

func TestNonce(t *testing.T) {
	for _, n := range []uint64{0, 1, 127, 128, 300, 1 << 40, ^uint64(0)} {
		got, err := koinos.DecodeNonce(koinos.EncodeNonce(n))
		if err != nil || got != n {
			t.Fatalf("nonce %d: got %d, %v", n, got, err)
		}
	}
	if got := koinos.EncodeNonce(1); !bytes.Equal(got, []byte{0x28, 0x01}) {
		t.Fatalf("nonce 1 = %x, want 2801 (koilib's \"KAE=\")", got)
	}
	for _, bad := range [][]byte{nil, {0x28}, {0x20, 0x01}, {0x28, 0x81, 0x00}, {0x28, 0x01, 0x00}, {0x28, 0x80}} {
		if _, err := koinos.DecodeNonce(bad); err == nil {
			t.Errorf("DecodeNonce(%x) accepted", bad)
		}
	}
}

func TestStateMerkleRoot(t *testing.T) {
	k1 := koinos.StateKey{System: true, Space: 4, Key: []byte("alice")}.DatabaseKey()
	k2 := koinos.StateKey{System: true, Space: 4, Key: []byte("bob")}.DatabaseKey()
	entries := []koinos.DeltaEntry{{DatabaseKey: k2, Removed: true}, {DatabaseKey: k1, Value: []byte("v")}}
	got := koinos.StateMerkleRoot(entries)
	// Sorted bytewise over the serialized database_key, where the key's
	// length byte comes first: k2 ("bob", 3) sorts before k1 ("alice", 5).
	// The removed value hashes as empty.
	if bytes.Compare(k2, k1) >= 0 {
		t.Fatal("test assumes k2 < k1")
	}
	leaves := []koinos.Digest{sha256.Sum256(k2), sha256.Sum256(nil), sha256.Sum256(k1), sha256.Sum256([]byte("v"))}
	if want := koinos.MerkleRoot(leaves); got != want {
		t.Fatalf("state root %x, want %x", got, want)
	}
	if koinos.StateMerkleRoot(nil) != sha256.Sum256(nil) {
		t.Fatal("empty delta root")
	}
}

type koilibVector struct {
	Description string          `json:"description"`
	WIF         string          `json:"private_key_wif"`
	Address     string          `json:"address"`
	Nonce       uint64          `json:"nonce"`
	Transaction json.RawMessage `json:"transaction"`
	ID          string          `json:"id"`
	Signature   string          `json:"signature"`
}

// Transactions built and signed by koilib (testdata/gen_koilib_vectors.js):
// Ember must compute the same id and operation merkle root, recover the same
// signer and produce the same signature bytes for the same key.
func TestKoilibVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/koilib_vectors.json")
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
		t.Run(v.Description, func(t *testing.T) {
			var tx protocol.Transaction
			if err := kjson.Unmarshal(v.Transaction, &tx); err != nil {
				t.Fatal(err)
			}
			id := koinos.TransactionID(tx.Header)
			if got := "0x" + hex.EncodeToString(id.Multihash()); got != v.ID {
				t.Fatalf("id %s, koilib computed %s", got, v.ID)
			}
			if !bytes.Equal(tx.Id, id.Multihash()) {
				t.Fatal("id field differs from computed id")
			}
			opRoot := koinos.OperationMerkleRoot(tx.Operations)
			if !bytes.Equal(opRoot.Multihash(), tx.Header.OperationMerkleRoot) {
				t.Fatalf("operation merkle root %x, header says %x", opRoot.Multihash(), tx.Header.OperationMerkleRoot)
			}
			nonce, err := koinos.DecodeNonce(tx.Header.Nonce)
			if err != nil || nonce != v.Nonce {
				t.Fatalf("nonce %d (%v), want %d", nonce, err, v.Nonce)
			}
			addr, err := keys.RecoverSecp256k1(tx.Signatures[0], id)
			if err != nil {
				t.Fatal(err)
			}
			if addr.String() != v.Address {
				t.Fatalf("recovered %s, want %s", addr, v.Address)
			}
			key, err := keys.ParseWIF(v.WIF)
			if err != nil {
				t.Fatal(err)
			}
			if key.Address().String() != v.Address {
				t.Fatalf("WIF address %s, want %s", key.Address(), v.Address)
			}
			// RFC 6979 signatures are deterministic: same key, same digest,
			// same bytes as koilib (noble-secp256k1).
			if !bytes.Equal(key.Sign(id), tx.Signatures[0]) {
				t.Fatal("Ember's signature differs from koilib's")
			}
			// And the JSON Ember writes back reads as the same transaction.
			out, err := kjson.Marshal(&tx)
			if err != nil {
				t.Fatal(err)
			}
			var again protocol.Transaction
			if err := kjson.Unmarshal(out, &again); err != nil || !again.EqualVT(&tx) {
				t.Fatalf("JSON round trip changed the transaction: %v\n%s", err, out)
			}
		})
	}
}

// FuzzParsers: the parsers of untrusted ids, addresses and nonces never
// panic, and what they accept round-trips.
func FuzzParsers(f *testing.F) {
	f.Add([]byte{0x28, 0x01})
	f.Add(koinos.ZeroMultihash())
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := koinos.DecodeNonce(b); err == nil && !bytes.Equal(koinos.EncodeNonce(n), b) {
			t.Fatal("nonce is not canonical")
		}
		if d, err := koinos.ParseMultihash(b); err == nil && !bytes.Equal(d.Multihash(), b) {
			t.Fatal("multihash round trip")
		}
		if a, err := koinos.ParseAddress(b); err == nil {
			if back, err := koinos.DecodeAddress(a.String()); err != nil || back != a {
				t.Fatal("address round trip")
			}
		}
		_, _ = koinos.DecodeAddress(string(b))
	})
}
