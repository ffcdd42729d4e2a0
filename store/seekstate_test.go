package store

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/emberchain/ember/engine/state"
)

// TestSeekStateMatchesMap: the store's ordered state reads (next_object,
// previous_object) agree with state.MapStorage's scan on the same keys,
// across spaces, key lengths and the space's edges, and never leave the
// space asked for.
func TestSeekStateMatchesMap(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	ref := state.MapStorage{}
	var prefixes, probes [][]byte
	for _, zone := range [][]byte{[]byte("a"), []byte("ab"), {0xff, 0xff}} {
		for _, space := range []uint32{0, 1, 300} {
			prefixes = append(prefixes, state.SpacePrefix(false, zone, space))
			for range 12 {
				k := make([]byte, rng.IntN(5))
				for i := range k {
					k[i] = byte(rng.IntN(3)) * 0x7f
				}
				key := state.ObjectKey(false, zone, space, k)
				probes = append(probes, key)
				if rng.IntN(3) > 0 {
					ref[string(key)] = []byte{byte(len(ref))}
				}
			}
		}
	}
	b := st.db.NewBatch()
	for k, v := range ref {
		if err := b.Set(stateKey(nil, []byte(k)), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range prefixes {
		end := bytes.Clone(p)
		end[len(end)-1]++
		for _, from := range append([][]byte{p, end}, probes...) {
			for _, reverse := range []bool{false, true} {
				k, v, ok, err := st.SeekState(p, from, reverse)
				wk, wv, wok, _ := ref.SeekState(p, from, reverse)
				if err != nil || ok != wok || !bytes.Equal(k, wk) || !bytes.Equal(v, wv) {
					t.Fatalf("SeekState(%x, %x, reverse=%v) = %x, %x, %v, %v; want %x, %x, %v", p, from, reverse, k, v, ok, err, wk, wv, wok)
				}
			}
		}
	}
}
