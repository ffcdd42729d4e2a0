package replay

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/store"
)

func key(label string) keys.Signer {
	d := koinos.Sum256([]byte(label))
	return keys.Ed25519FromSeed(d[:])
}

// chainStore produces blocks round-robin by n producers, with transfers
// between two users, into a store on disk, and closes it. tamper, when
// set, may change each Ready before it is committed.
func chainStore(t *testing.T, producers, blocks int, chainName string, tamper func(i int, r *chain.Ready)) (string, *genesis.Genesis, chain.Meta) {
	t.Helper()
	var prods []keys.Signer
	var addrs []koinos.Address
	for i := range producers {
		prods = append(prods, key(fmt.Sprintf("producer-%d", i)))
		addrs = append(addrs, prods[i].Address())
	}
	users := []keys.Signer{key("user-0"), key("user-1")}
	g, err := genesis.Dev(genesis.DevOptions{
		Producers: addrs, Balances: map[koinos.Address]uint64{users[0].Address(): 1e12, users[1].Address(): 1e12},
		TokenAuthority: users[0].Address(), Now: time.UnixMilli(1_700_000_000_000), ChainName: chainName,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	c, r, err := chain.Open(chain.Config{Genesis: g, Storage: st, CheckpointInterval: 3})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(r *chain.Ready) {
		t.Helper()
		if err := st.Commit(r); err != nil {
			t.Fatal(err)
		}
		c.Advance(r)
	}
	commit(r)
	nonces := map[int]uint64{}
	for i := range blocks {
		var txs []*sigverify.VerifiedTx
		for k := range i % 3 {
			from := k % 2
			nonces[from]++
			tx, err := txbuilder.Transfer(users[from], c.Token().ID(), users[1-from].Address(), 1,
				txbuilder.Header{ChainID: c.Limits().ChainID, Nonce: nonces[from], RcLimit: 10_000_000})
			if err != nil {
				t.Fatal(err)
			}
			v, err := sigverify.Verify(tx, c.Limits())
			if err != nil {
				t.Fatal(err)
			}
			txs = append(txs, v)
		}
		slot := c.SlotAt(c.HeadTime()) + 1
		p := prods[slot%uint64(producers)]
		prop, err := c.Build(c.SlotTime(slot), p.Address(), txs)
		if err != nil || len(prop.Failed) > 0 {
			t.Fatalf("build: %v %v", err, prop.Failed)
		}
		r, err := c.Commit(prop, p.Sign(prop.ID))
		if err != nil {
			t.Fatal(err)
		}
		if tamper != nil {
			tamper(i, r)
		}
		commit(r)
	}
	meta, _, err := st.LoadMeta()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, g, meta
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Two producers: the last block stays above the last irreversible one,
// so the replay goes through the canonical index and the fork blocks.
func TestReplayReachesTheStoredHead(t *testing.T) {
	dir, g, meta := chainStore(t, 2, 12, "", nil)
	if meta.LIB.Height == meta.Head.Height {
		t.Fatalf("want blocks above the LIB: %+v", meta)
	}
	res, err := Run(openStore(t, dir), g, Options{ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Head != meta.Head || res.Blocks != 12 || res.Txs != 12 {
		t.Fatalf("replay reached %+v after %d blocks, %d txs; stored head %+v", res.Head, res.Blocks, res.Txs, meta.Head)
	}
}

// A store whose block 5 receipt names another state root than the block
// applies to: the replay stops there.
func TestReplayRefusesAWrongStoredStateRoot(t *testing.T) {
	dir, g, _ := chainStore(t, 1, 8, "", func(i int, r *chain.Ready) {
		if i != 4 {
			return
		}
		// A copy of the entry, with a receipt of our own: the engine's
		// entry is shared and must not change.
		e := *r.Accepted[0]
		rc := e.Receipt.CloneVT()
		rc.StateMerkleRoot = koinos.Sum256([]byte("not the root")).Multihash()
		e.Receipt = rc
		r.Accepted[0] = &e
		for k, ir := range r.Irreversible {
			if ir.ID == e.ID {
				r.Irreversible[k] = &e
			}
		}
	})
	_, err := Run(openStore(t, dir), g, Options{ScratchDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "block 5") || !strings.Contains(err.Error(), "state root") {
		t.Fatalf("want block 5's state root refused, got %v", err)
	}
}

func TestReplayRefusesAnotherChainsGenesis(t *testing.T) {
	dir, _, _ := chainStore(t, 1, 2, "", nil)
	_, other, _ := chainStore(t, 1, 0, "other-chain", nil)
	_, err := Run(openStore(t, dir), other, Options{ScratchDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "genesis is for chain") {
		t.Fatalf("want the chain id refused, got %v", err)
	}
}
