package state

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/emberchain/ember/engine/koinos"
)

// TestObjectsMatchModel drives random object writes through the layers a
// chain uses (deltas over deltas, merges into the base, checkpoints into
// the storage, reverts) and checks every read and every next/previous
// lookup against a plain map of what the top layer should see.
func TestObjectsMatchModel(t *testing.T) {
	zones := [][]byte{[]byte("contract-a"), []byte("contract-b")}
	prefixes := [][]byte{SpacePrefix(false, zones[0], 1), SpacePrefix(false, zones[0], 2), SpacePrefix(false, zones[1], 1)}
	// Keys of several lengths, so the serialized order (shorter first)
	// differs from the keys' own byte order.
	userKeys := [][]byte{{}, {0}, {1}, {0xff}, {0, 0}, {1, 2}, []byte("abc"), bytes.Repeat([]byte{7}, 130)}
	var allKeys [][]byte
	for _, z := range zones {
		for _, sp := range []uint32{1, 2} {
			for _, k := range userKeys {
				allKeys = append(allKeys, ObjectKey(false, z, sp, k))
			}
		}
	}
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			storage := MapStorage{}
			base := NewBase(storage, 0, 0)
			model := map[string][]byte{}
			var chain []*Delta // unmerged deltas, oldest first
			var unapplied []koinos.DeltaEntry
			top := func() *Delta { return chain[len(chain)-1] }
			newBlock := func() {
				var parent *Delta
				if len(chain) > 0 {
					parent = top()
					parent.Freeze()
				}
				chain = append(chain, NewDelta(base, parent, 4))
			}
			newBlock()
			for step := range 250 {
				switch op := rng.IntN(20); {
				case op < 8:
					k := allKeys[rng.IntN(len(allKeys))]
					v := []byte{byte(step), byte(seed)}
					if err := top().PutObject(k, v); err != nil {
						t.Fatal(err)
					}
					model[string(k)] = v
				case op < 11:
					k := allKeys[rng.IntN(len(allKeys))]
					if err := top().RemoveObject(k); err != nil {
						t.Fatal(err)
					}
					delete(model, string(k))
				case op < 13:
					// A transaction that reverts.
					d := top()
					mark := d.Mark()
					for range 3 {
						_ = d.PutObject(allKeys[rng.IntN(len(allKeys))], []byte("reverted"))
						_ = d.RemoveObject(allKeys[rng.IntN(len(allKeys))])
					}
					d.Revert(mark)
				case op < 16:
					newBlock()
				case op < 18 && len(chain) > 1:
					// The oldest block becomes irreversible.
					oldest := chain[0]
					oldest.Freeze()
					base.Merge(oldest)
					chain = chain[1:]
					chain[0].Detach()
				case op < 20:
					// A checkpoint: what the store writes. With odd seeds the
					// store's commit lands only before the next checkpoint is
					// taken, as late as the chain allows, so reads in between
					// go through the base's pending writes.
					if seed%2 == 1 {
						applyWrites(storage, unapplied)
						unapplied = base.TakeDirty()
					} else {
						applyWrites(storage, base.TakeDirty())
					}
				}
				checkObjects(t, top(), model, allKeys, prefixes)
			}
		})
	}
}

func checkObjects(t *testing.T, d *Delta, model map[string][]byte, keys, prefixes [][]byte) {
	t.Helper()
	for _, k := range keys {
		v, ok, err := d.Object(k)
		want, wantOK := model[string(k)]
		if err != nil || ok != wantOK || !bytes.Equal(v, want) {
			t.Fatalf("Object(%x) = %x, %v, %v; want %x, %v", k, v, ok, err, want, wantOK)
		}
	}
	sorted := slices.SortedFunc(maps.Keys(model), func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) })
	for _, p := range prefixes {
		var inSpace []string
		for _, k := range sorted {
			if bytes.HasPrefix([]byte(k), p) {
				inSpace = append(inSpace, k)
			}
		}
		froms := append([][]byte{p, prefixEndForTest(p)}, keys...)
		for _, from := range froms {
			var wantNext, wantPrev string
			for _, k := range inSpace {
				if k > string(from) && wantNext == "" {
					wantNext = k
				}
				if k < string(from) {
					wantPrev = k
				}
			}
			for _, c := range []struct {
				name string
				fn   func([]byte, []byte) ([]byte, []byte, bool, error)
				want string
			}{{"next", d.NextObject, wantNext}, {"prev", d.PrevObject, wantPrev}} {
				k, v, ok, err := c.fn(p, from)
				if err != nil || ok != (c.want != "") || string(k) != c.want || (ok && !bytes.Equal(v, model[c.want])) {
					t.Fatalf("%s(%x, %x) = %x, %x, %v, %v; want %x", c.name, p, from, k, v, ok, err, c.want)
				}
			}
		}
	}
}

func applyWrites(storage MapStorage, writes []koinos.DeltaEntry) {
	for _, e := range writes {
		if e.Removed {
			delete(storage, string(e.DatabaseKey))
		} else {
			storage[string(e.DatabaseKey)] = e.Value
		}
	}
}

func prefixEndForTest(p []byte) []byte {
	end := bytes.Clone(p)
	end[len(end)-1]++
	return end
}

// TestObjectsInMerkleRoot: a delta with objects commits to them in the
// general Koinos state root, removals included, and its entries say so.
func TestObjectsInMerkleRoot(t *testing.T) {
	base := NewBase(MapStorage{}, 0, 0)
	d := NewDelta(base, nil, 4)
	a := koinos.AddressFromKey([]byte("a"))
	d.SetAccount(a, Account{Balance: 3})
	k1, k2 := ObjectKey(false, []byte("c"), 1, []byte("x")), ObjectKey(false, []byte("c"), 1, []byte("y"))
	if err := d.PutObject(k1, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveObject(k2); err != nil {
		t.Fatal(err)
	}
	want := koinos.StateMerkleRoot([]koinos.DeltaEntry{
		{DatabaseKey: AccountKey(a), Value: Account{Balance: 3}.Encode(nil)},
		{DatabaseKey: k1, Value: []byte("v")},
		{DatabaseKey: k2, Removed: true},
	})
	if got := d.MerkleRoot(); got != want {
		t.Fatalf("root %x, want %x", got, want)
	}
	if d.Len() != 3 {
		t.Fatalf("Len %d, want 3", d.Len())
	}
}

// TestObjectKeyBounds: empty and oversized keys are refused, never stored.
func TestObjectKeyBounds(t *testing.T) {
	d := NewDelta(NewBase(MapStorage{}, 0, 0), nil, 1)
	for _, k := range [][]byte{nil, make([]byte, MaxObjectKey+1)} {
		if err := d.PutObject(k, []byte("v")); err != ErrObjectKey {
			t.Errorf("PutObject(%d bytes) = %v, want ErrObjectKey", len(k), err)
		}
		if err := d.RemoveObject(k); err != ErrObjectKey {
			t.Errorf("RemoveObject(%d bytes) = %v, want ErrObjectKey", len(k), err)
		}
	}
	if _, _, _, err := d.NextObject(nil, []byte("x")); err != ErrObjectKey {
		t.Errorf("NextObject with no prefix = %v, want ErrObjectKey", err)
	}
}
