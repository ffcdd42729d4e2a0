package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// TestCrashKeepsEveryReturnedCommit crash-clones a store's filesystem at
// random moments while Readies are committed one by one and in groups.
// Each clone must reopen to exactly the store that committing some prefix
// of the Readies gives — key for key — and that prefix must include every
// Commit or CommitGroup that had returned when the clone was taken. So a
// returned commit is durable and a half-written one is invisible.
func TestCrashKeepsEveryReturnedCommit(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// The Readies of a real chain: four producers, so blocks stay
	// reversible for a while and fork markers come and go; checkpoints
	// every 3 irreversible blocks.
	src := newNode(t, newNet(t, 4, 6), vfs.NewMem(), 3)
	for i := range 40 {
		var txs []*protocol.Transaction
		for k := range i % 5 {
			txs = append(txs, src.transfer((i+k)%6, (i+k+1)%6, 1))
		}
		src.produce(i%4, txs...)
	}
	readies := src.readies

	fs := vfs.NewCrashableMem()
	st, err := Open("db", Options{FS: fs, FrameTxs: 2})
	if err != nil {
		t.Fatal(err)
	}
	type clone struct {
		fs       *vfs.MemFS
		returned int // Readies whose commit had returned before the clone
	}
	var (
		committed atomic.Int64
		done      = make(chan struct{})
		clones    []clone
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		crng := rand.New(rand.NewPCG(seed, 2))
		for len(clones) < 40 {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(crng.IntN(1000)) * time.Microsecond):
			}
			n := int(committed.Load())
			pct := []int{0, 30, 70, 100}[crng.IntN(4)]
			c := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(crng.Uint64(), 3))})
			clones = append(clones, clone{c, n})
		}
	}()
	for i := 0; i < len(readies); {
		n := 1 + rng.IntN(4)
		group := readies[i:min(i+n, len(readies))]
		if err := commitReadies(st, group); err != nil {
			t.Fatal(err)
		}
		i += len(group)
		committed.Store(int64(i))
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	}
	close(done)
	wg.Wait()
	clones = append(clones, clone{fs.CrashClone(vfs.CrashCloneCfg{}), len(readies)})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	ref := prefixRefs(t, readies)
	ahead := 0
	for ci, c := range clones {
		got, k := checkClone(t, fmt.Sprintf("clone %d", ci), c.fs, c.returned, readies, ref)
		if k > c.returned {
			ahead++
		}
		if k > 0 {
			// And the engine restarts on it.
			c, r, err := chain.Open(chain.Config{Genesis: src.net.g, Storage: got, CheckpointInterval: 3})
			if err != nil {
				t.Fatalf("clone %d: chain restart: %v", ci, err)
			}
			if err := got.Commit(r); err != nil {
				t.Fatal(err)
			}
			c.Advance(r)
			if c.View().Head != readies[k-1].Meta.Head {
				t.Fatalf("clone %d: restarted head %d, want %d", ci, c.View().Head.Height, readies[k-1].Meta.Head.Height)
			}
		}
		_ = got.Close()
	}
	t.Logf("%d crash clones; %d held Readies whose commit had not returned", len(clones), ahead)
}

// commitReadies commits one Ready with Commit, several with CommitGroup.
func commitReadies(st *Store, group []*chain.Ready) error {
	if len(group) == 1 {
		return st.Commit(group[0])
	}
	return st.CommitGroup(group)
}

// prefixRefs returns the store that committing exactly the first k
// Readies gives, made once per k and closed with the test.
func prefixRefs(t *testing.T, readies []*chain.Ready) func(k int) *Store {
	refs := map[int]*Store{}
	t.Cleanup(func() {
		for _, s := range refs {
			_ = s.Close()
		}
	})
	return func(k int) *Store {
		if refs[k] == nil {
			s, err := Open("ref", Options{FS: vfs.NewMem(), FrameTxs: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range readies[:k] {
				if err := s.Commit(r); err != nil {
					t.Fatal(err)
				}
			}
			refs[k] = s
		}
		return refs[k]
	}
}

// checkClone reopens a crash clone and checks it holds exactly the store
// some prefix of the Readies gives, a prefix with at least the returned
// ones. It returns the open store and the prefix's length.
func checkClone(t *testing.T, what string, fs vfs.FS, returned int, readies []*chain.Ready, ref func(int) *Store) (*Store, int) {
	t.Helper()
	got, err := Open("db", Options{FS: fs, FrameTxs: 2})
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	k := prefixOf(t, got, readies)
	if k < returned {
		t.Fatalf("%s holds %d Readies, but %d commits had returned", what, k, returned)
	}
	if d := diffStores(t, got, ref(k)); d != "" {
		t.Fatalf("%s holds %d Readies but differs from a store with exactly those: %s", what, k, d)
	}
	return got, k
}

// prefixOf finds how many Readies a store holds from its metadata.
func prefixOf(t *testing.T, st *Store, readies []*chain.Ready) int {
	t.Helper()
	m, found, _ := st.LoadMeta()
	if !found {
		return 0
	}
	for k := len(readies); k > 0; k-- {
		if readies[k-1].Meta == m {
			return k
		}
	}
	t.Fatalf("store meta %+v matches no Ready", m)
	return 0
}
