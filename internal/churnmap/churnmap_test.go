package churnmap

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestMapMatchesGoMap runs random operations on a Map and a Go map side
// by side, over many rebuilds, deletions of absent keys included.
func TestMapMatchesGoMap(t *testing.T) {
	tests := []struct {
		name string
		keys int // keys drawn from [0, keys)
		ops  int
	}{
		{"few keys", 8, 5_000},
		{"around minRebuild", 100, 20_000},
		{"many keys", 5_000, 200_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tt.keys)))
			var got Map[int, int]
			want := map[int]int{}
			for i := range tt.ops {
				k := rng.IntN(tt.keys)
				switch rng.IntN(3) {
				case 0, 1:
					got.Set(k, i)
					want[k] = i
				case 2:
					got.Delete(k)
					delete(want, k)
				}
				if got.Len() != len(want) {
					t.Fatalf("op %d: Len %d, want %d", i, got.Len(), len(want))
				}
			}
			for k := range tt.keys {
				v, ok := got.Get(k)
				wv, wok := want[k]
				if ok != wok || v != wv {
					t.Fatalf("Get(%d) = %d, %v; want %d, %v", k, v, ok, wv, wok)
				}
			}
		})
	}
}

func TestZeroMap(t *testing.T) {
	var m Map[string, int]
	if _, ok := m.Get("a"); ok || m.Len() != 0 {
		t.Fatal("the zero Map is not empty")
	}
	m.Delete("a") // no panic on the nil map, no count
	if m.deletes != 0 {
		t.Fatalf("deleting an absent key counted: %d", m.deletes)
	}
	m.Set("a", 1)
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("Get after Set = %d, %v", v, ok)
	}
}

// TestDeleteWhileRanging deletes entries from inside All, enough to
// trigger several rebuilds: every entry is yielded once, the deleted ones
// are gone, and rebuilds resume after the loop, also after a break.
func TestDeleteWhileRanging(t *testing.T) {
	const n = 1_000
	var m Map[int, int]
	for i := range n {
		m.Set(i, i)
	}
	seen := map[int]int{}
	for k, v := range m.All() {
		if k != v {
			t.Fatalf("yielded %d: %d", k, v)
		}
		if _, ok := m.Get(k); !ok {
			t.Fatalf("yielded %d after its deletion", k)
		}
		seen[k]++
		if k%4 != 0 {
			m.Delete(k)
			m.Delete((k + 1) % n) // maybe not yet reached: then never yielded
		}
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("%d yielded %d times", k, c)
		}
	}
	if m.ranging != 0 {
		t.Fatalf("ranging = %d after the loop", m.ranging)
	}
	want := 0
	for i := range n {
		_, ok := m.Get(i)
		if ok != (i%4 == 0 && seen[(i+n-1)%n] == 0) { // i-1 deleted it when yielded
			t.Fatalf("Get(%d) present = %v", i, ok)
		}
		if ok {
			want++
		}
	}
	if m.Len() != want {
		t.Fatalf("Len %d, want %d", m.Len(), want)
	}
	if m.deletes < minRebuild {
		t.Fatalf("%d deletions counted while ranging; the test needs more than %d", m.deletes, minRebuild)
	}
	var first int
	for k := range m.All() {
		first = k
		break
	}
	m.Delete(first) // more deletions are pending than entries remain
	if m.deletes != 0 {
		t.Fatalf("%d deletions pending after the loops: no rebuild after ranging", m.deletes)
	}
}

type cacheKey [32]byte

// outcome has the size of the signature cache's slot.
type outcome [48]byte

func keyOf(i int) cacheKey {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func heapBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestChurnStaysBounded replaces the entries of a fixed-size cache oldest
// first, the way the signature cache does, and checks that the memory the
// map holds stays near what it held when first filled. A Go map under
// the same load grows past 3× (0.79 MB against 0.24 MB here).
func TestChurnStaysBounded(t *testing.T) {
	const size, inserts = 1280, 300_000
	base := heapBytes()
	var m Map[cacheKey, outcome]
	ring := make([]cacheKey, size)
	for i := range size {
		ring[i] = keyOf(i)
		m.Set(ring[i], outcome{})
	}
	filled := heapBytes() - base
	for i := size; i < inserts; i++ {
		m.Delete(ring[i%size])
		ring[i%size] = keyOf(i)
		m.Set(ring[i%size], outcome{})
	}
	churned := heapBytes() - base
	runtime.KeepAlive(ring)
	if m.Len() != size {
		t.Fatalf("Len %d, want %d", m.Len(), size)
	}
	t.Logf("held after filling %d entries: %d B; after %d insertions: %d B", size, filled, inserts, churned)
	if churned > 2*filled {
		t.Fatalf("the map grew from %d B to %d B under churn at a constant %d entries", filled, churned, size)
	}
}

// BenchmarkChurn is a fixed-size cache replaced oldest first: one
// insertion and one deletion an operation, in a Go map and in a Map.
func BenchmarkChurn(b *testing.B) {
	const size = 1280
	keys := make([]cacheKey, 1<<16)
	for i := range keys {
		keys[i] = keyOf(i)
	}
	b.Run("gomap", func(b *testing.B) {
		m := map[cacheKey]outcome{}
		for i := 0; b.Loop(); i++ {
			m[keys[i%len(keys)]] = outcome{}
			if i >= size {
				delete(m, keys[(i-size)%len(keys)])
			}
		}
	})
	b.Run("churnmap", func(b *testing.B) {
		var m Map[cacheKey, outcome]
		for i := 0; b.Loop(); i++ {
			m.Set(keys[i%len(keys)], outcome{})
			if i >= size {
				m.Delete(keys[(i-size)%len(keys)])
			}
		}
	})
}
