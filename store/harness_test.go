package store

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// net is a test network: a genesis with producers and funded users.
type net struct {
	g         *genesis.Genesis
	producers []keys.Signer
	users     []keys.Signer
}

const initialBalance = 1_000_000_000_000

func seed(s string) []byte {
	d := koinos.Sum256([]byte(s))
	return d[:]
}

// newNet makes a network; every third user signs with secp256k1 (the
// Koinos wallet scheme), the others with Ed25519.
func newNet(t testing.TB, nProducers, nUsers int) *net {
	t.Helper()
	n := &net{}
	balances := map[koinos.Address]uint64{}
	for i := range nProducers {
		n.producers = append(n.producers, keys.Ed25519FromSeed(seed(fmt.Sprintf("producer-%d", i))))
	}
	for i := range nUsers {
		var k keys.Signer
		if i%3 == 0 && nUsers < 100 {
			var err error
			if k, err = keys.Secp256k1FromBytes(seed(fmt.Sprintf("user-%d", i))); err != nil {
				t.Fatal(err)
			}
		} else {
			k = keys.Ed25519FromSeed(seed(fmt.Sprintf("user-%d", i)))
		}
		n.users = append(n.users, k)
		balances[k.Address()] = initialBalance
	}
	var prods []koinos.Address
	for _, p := range n.producers {
		prods = append(prods, p.Address())
	}
	g, err := genesis.Dev(genesis.DevOptions{
		Producers: prods, Balances: balances, TokenAuthority: n.users[0].Address(),
		Now: time.UnixMilli(1_700_000_000_000),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.g = g
	return n
}

// node is one chain instance over a Store, driven as the node does:
// step, Commit, Advance.
type node struct {
	t       testing.TB
	net     *net
	fs      vfs.FS
	dir     string
	opts    Options
	ckEvery uint64
	st      *Store
	c       *chain.Chain
	nonces  map[int]uint64
	readies []*chain.Ready // every Ready committed, for tests that replay them
	// lazyIndex leaves the indexer behind: commit does not run it, so
	// reads go through the blocks it has not reached.
	lazyIndex bool
}

func newNode(t testing.TB, n *net, fs vfs.FS, ckEvery uint64) *node {
	t.Helper()
	dir := "db"
	if fs == nil {
		dir = filepath.Join(t.TempDir(), "db")
	}
	nd := &node{t: t, net: n, fs: fs, dir: dir, ckEvery: ckEvery, nonces: map[int]uint64{}}
	nd.opts = Options{FS: fs, FrameTxs: 4}
	nd.open()
	return nd
}

func (nd *node) open() {
	nd.t.Helper()
	st, err := Open(nd.dir, nd.opts)
	if err != nil {
		nd.t.Fatal(err)
	}
	nd.st = st
	nd.openChain()
}

func (nd *node) openChain() {
	nd.t.Helper()
	c, r, err := chain.Open(chain.Config{Genesis: nd.net.g, Storage: nd.st, CheckpointInterval: nd.ckEvery})
	if err != nil {
		nd.t.Fatal(err)
	}
	nd.c = c
	nd.commit(r)
}

// reopen closes the store and opens store and chain again, as a restart.
func (nd *node) reopen() {
	nd.t.Helper()
	if err := nd.st.Close(); err != nil {
		nd.t.Fatal(err)
	}
	nd.open()
}

func (nd *node) commit(r *chain.Ready) {
	nd.t.Helper()
	if err := nd.st.Commit(r); err != nil {
		nd.t.Fatal(err)
	}
	nd.c.Advance(r)
	nd.readies = append(nd.readies, r)
	if !nd.lazyIndex {
		indexAll(nd.t, nd.st)
	}
}

// indexAll runs the indexer until it has caught up with the log, as the
// node's indexer service does after each commit.
func indexAll(t testing.TB, st *Store) {
	t.Helper()
	for {
		rep, err := st.IndexStep(64)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Records == 0 {
			return
		}
	}
}

func (nd *node) step(r *chain.Ready, err error) *chain.Ready {
	nd.t.Helper()
	if err != nil {
		nd.t.Fatal(err)
	}
	nd.commit(r)
	return r
}

// nextSlotOf is the first slot after time `after` that belongs to
// producer p.
func (nd *node) nextSlotOf(p int, after uint64) uint64 {
	s := nd.c.SlotAt(after) + 1
	for nd.c.ScheduledProducer(s) != nd.net.producers[p].Address() {
		s++
	}
	return s
}

// build builds and signs a block by producer p on the head, without
// committing it.
func (nd *node) build(p int, slot uint64, txs ...*protocol.Transaction) (*chain.Proposal, []byte) {
	nd.t.Helper()
	if slot == 0 {
		slot = nd.nextSlotOf(p, nd.c.HeadTime())
	}
	prop, err := nd.c.Build(nd.c.SlotTime(slot), nd.net.producers[p].Address(), nd.verify(txs...))
	if err != nil {
		nd.t.Fatal(err)
	}
	if len(prop.Failed) > 0 {
		nd.t.Fatalf("transactions left out: %v", prop.Failed[0].Err)
	}
	return prop, nd.net.producers[p].Sign(prop.ID)
}

// produce builds, signs and commits a block on the head from producer p.
func (nd *node) produce(p int, txs ...*protocol.Transaction) *chain.Ready {
	nd.t.Helper()
	prop, sig := nd.build(p, 0, txs...)
	return nd.step(nd.c.Commit(prop, sig))
}

// accept verifies a block another node made and applies it here.
func (nd *node) accept(b *protocol.Block) *chain.Ready {
	nd.t.Helper()
	vb, err := sigverify.VerifyBlock(b, nd.c.Limits(), 0)
	if err != nil {
		nd.t.Fatal(err)
	}
	return nd.step(nd.c.AcceptBlock(vb, math.MaxUint64))
}

func (nd *node) verify(txs ...*protocol.Transaction) []*sigverify.VerifiedTx {
	nd.t.Helper()
	out := make([]*sigverify.VerifiedTx, len(txs))
	for i, tx := range txs {
		v, err := sigverify.Verify(tx, nd.c.Limits())
		if err != nil {
			nd.t.Fatalf("verify tx %d: %v", i, err)
		}
		out[i] = v
	}
	return out
}

// transfer makes a signed transfer with the sender's next nonce.
func (nd *node) transfer(from, to int, value uint64) *protocol.Transaction {
	nd.t.Helper()
	nd.nonces[from]++
	tx, err := txbuilder.Transfer(nd.net.users[from], nd.c.Token().ID(), nd.net.users[to].Address(), value,
		txbuilder.Header{ChainID: nd.c.Limits().ChainID, Nonce: nd.nonces[from], RcLimit: 10_000_000})
	if err != nil {
		nd.t.Fatal(err)
	}
	return tx
}

func (nd *node) balance(i int) (bal, nonce uint64) {
	nd.t.Helper()
	a, err := nd.c.View().Account(nd.net.users[i].Address())
	if err != nil {
		nd.t.Fatal(err)
	}
	return a.Balance, a.Nonce
}

func (nd *node) addr(i int) koinos.Address { return nd.net.users[i].Address() }

func txID(t testing.TB, tx *protocol.Transaction) koinos.Digest {
	t.Helper()
	d, err := koinos.ParseMultihash(tx.Id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
