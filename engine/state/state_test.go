package state

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/emberchain/ember/engine/koinos"
	emberpb "github.com/emberchain/ember/proto/ember"
)

func TestCurrentMana(t *testing.T) {
	const regen = 1000
	tests := []struct {
		name string
		a    Account
		now  uint64
		want uint64
	}{
		{"full stays full", Account{Balance: 100, Mana: 100, ManaUpdatedMs: 0}, 500, 100},
		{"half regenerates halfway", Account{Balance: 100, Mana: 0, ManaUpdatedMs: 0}, 500, 50},
		{"regenerates to the balance and stops", Account{Balance: 100, Mana: 40, ManaUpdatedMs: 0}, 800, 100},
		{"window passed", Account{Balance: 100, Mana: 0, ManaUpdatedMs: 10}, 5000, 100},
		{"clock before update", Account{Balance: 100, Mana: 30, ManaUpdatedMs: 100}, 50, 30},
		{"capped by a lower balance", Account{Balance: 10, Mana: 30, ManaUpdatedMs: 0}, 0, 10},
		{"huge balance no overflow", Account{Balance: math.MaxUint64, Mana: 0, ManaUpdatedMs: 0}, 999, mulDiv(math.MaxUint64, 999, regen)},
	}
	for _, tt := range tests {
		if got := tt.a.CurrentMana(tt.now, regen); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c)
	return q
}

func TestEncodeIsCanonical(t *testing.T) {
	for _, a := range []Account{{}, {Balance: 1}, {Balance: 300, Mana: 2, ManaUpdatedMs: 1 << 40, Nonce: math.MaxUint64}} {
		want, _ := (&emberpb.Account{Balance: a.Balance, Mana: a.Mana, ManaUpdatedMs: a.ManaUpdatedMs, Nonce: a.Nonce}).MarshalVT()
		if got := a.Encode(nil); string(got) != string(want) {
			t.Fatalf("%+v: %x, want %x", a, got, want)
		}
		back, err := DecodeAccount(want)
		if err != nil || back != a {
			t.Fatalf("decode %+v: %v", back, err)
		}
	}
}

type mapStore = MapStorage

func TestDeltaLayersAndRevert(t *testing.T) {
	a, b := koinos.AddressFromKey([]byte("a")), koinos.AddressFromKey([]byte("b"))
	store := mapStore{string(AccountKey(a)): Account{Balance: 5}.Encode(nil)}
	base := NewBase(store, 100, 0)
	d1 := NewDelta(base, nil, 0)
	if acct, found, _ := d1.Account(a); !found || acct.Balance != 5 {
		t.Fatal("read through to the store")
	}
	d1.SetAccount(a, Account{Balance: 6})
	d1.Freeze()
	d2 := NewDelta(base, d1, 0)
	mark := d2.Mark()
	d2.SetAccount(a, Account{Balance: 7})
	d2.SetAccount(b, Account{Balance: 1})
	d2.SetSupply(101)
	d2.Revert(mark)
	if acct, _, _ := d2.Account(a); acct.Balance != 6 {
		t.Fatal("revert must restore the parent's value")
	}
	if _, found, _ := d2.Account(b); found {
		t.Fatal("revert must drop a created account")
	}
	if d2.Supply() != 100 || d2.Len() != 0 {
		t.Fatal("revert must restore the supply")
	}
	base.Merge(d1)
	d2.Detach()
	if acct, _, _ := base.Account(a); acct.Balance != 6 {
		t.Fatal("merge")
	}
	if w := base.TakeDirty(); len(w) != 1 || len(base.TakeDirty()) != 0 {
		t.Fatalf("dirty writes %d", len(w))
	}
}

func FuzzDecodeAccount(f *testing.F) {
	f.Add(Account{Balance: 1, Nonce: 3}.Encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAccount(b)
		if err != nil {
			return
		}
		if again, err := DecodeAccount(a.Encode(nil)); err != nil || again != a {
			t.Fatal("re-encode changed the account")
		}
	})
}

// Delta.MerkleRoot is koinos.StateMerkleRoot over the entries, with and
// without the supply, for deltas of every size up to a few hundred
// accounts, including addresses that share their first bytes and the
// extremes of the address space (where the supply key may sort among
// them).
func TestDeltaMerkleRoot(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 7, 64, 333} {
		for _, supply := range []bool{false, true} {
			d := NewDelta(NewBase(mapStore{}, 0, 0), nil, n)
			for i := 0; i < n; i++ {
				var a koinos.Address
				switch i % 4 {
				case 0:
					a = koinos.AddressFromKey([]byte{byte(i), byte(i >> 8)})
				case 1: // shares the first 8 bytes with others
					a[10] = byte(i)
					a[11] = byte(i >> 8)
				case 2:
					for j := range a {
						a[j] = 0xff
					}
					a[24] = byte(i)
					a[23] = byte(i >> 8)
				default:
					a[0] = byte(rng.IntN(256))
					a[1] = byte(i)
					a[2] = byte(i >> 8)
				}
				d.SetAccount(a, Account{Balance: rng.Uint64N(1 << 40), Nonce: uint64(i), Mana: uint64(rng.IntN(3))})
			}
			if supply {
				d.SetSupply(rng.Uint64())
			}
			want := koinos.StateMerkleRoot(d.Entries())
			if got := d.MerkleRoot(); got != want {
				t.Fatalf("%d accounts, supply %v: root %x, want %x", n, supply, got, want)
			}
		}
	}
}

// AccountKey is the serialized koinos database_key of the account, as the
// protobuf encoder writes it, for every address shape.
func TestAccountKeyLayout(t *testing.T) {
	var ones koinos.Address
	for i := range ones {
		ones[i] = 0xff
	}
	for _, a := range []koinos.Address{{}, {1, 2, 3}, ones, koinos.AddressFromKey([]byte("k"))} {
		want := koinos.StateKey{System: true, Space: SpaceAccounts, Key: a[:]}.DatabaseKey()
		if got := AccountKey(a); string(got) != string(want) || len(got) > accountKeyMax {
			t.Fatalf("%x: key %x, want %x", a, got, want)
		}
	}
}

// BenchmarkDeltaMerkleRoot is the state root of a block that changed
// 1,000 accounts and the supply: the share of BenchmarkApplyBlock
// (engine/chain) that grows with the accounts a block touches.
func BenchmarkDeltaMerkleRoot(b *testing.B) {
	d := NewDelta(NewBase(mapStore{}, 0, 0), nil, 1000)
	for i := 0; i < 1000; i++ {
		d.SetAccount(koinos.AddressFromKey([]byte{byte(i), byte(i >> 8)}), Account{Balance: uint64(i) << 20, Nonce: uint64(i)})
	}
	d.SetSupply(1 << 50)
	b.ReportAllocs()
	for b.Loop() {
		d.MerkleRoot()
	}
}
