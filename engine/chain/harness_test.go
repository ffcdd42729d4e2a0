package chain

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/state"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/engine/vm"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// memStorage is Storage over maps, committing Readies as the store does.
type memStorage struct {
	state     map[string][]byte
	meta      Meta
	hasMeta   bool
	blocks    map[koinos.Digest]*BlockEntry
	canonical map[uint64]koinos.Digest
}

func newMemStorage() *memStorage {
	return &memStorage{state: map[string][]byte{}, blocks: map[koinos.Digest]*BlockEntry{}, canonical: map[uint64]koinos.Digest{}}
}

func (m *memStorage) GetState(key []byte) ([]byte, bool, error) {
	return state.MapStorage(m.state).GetState(key)
}

func (m *memStorage) SeekState(prefix, from []byte, reverse bool) ([]byte, []byte, bool, error) {
	return state.MapStorage(m.state).SeekState(prefix, from, reverse)
}

func (m *memStorage) LoadMeta() (Meta, bool, error) { return m.meta, m.hasMeta, nil }

func (m *memStorage) CanonicalBlocks(from, to uint64, fn func(*BlockEntry) error) error {
	for h := from; h <= to; h++ {
		id, ok := m.canonical[h]
		if !ok {
			return fmt.Errorf("no canonical block at %d", h)
		}
		if err := fn(m.stored(id)); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStorage) ForkBlocks(h uint64, fn func(*BlockEntry) error) error {
	var es []*BlockEntry
	for _, e := range m.blocks {
		if e.Height > h {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Height < es[j].Height })
	for _, e := range es {
		if err := fn(m.stored(e.ID)); err != nil {
			return err
		}
	}
	return nil
}

// stored returns an entry as the store would: no Txs, Signers instead.
func (m *memStorage) stored(id koinos.Digest) *BlockEntry {
	e := m.blocks[id]
	return &BlockEntry{Topology: e.Topology, Block: e.Block.CloneVT(), Receipt: e.Receipt.CloneVT(), Signers: e.TxSigners()}
}

func (m *memStorage) commit(r *Ready) {
	for _, e := range r.Accepted {
		m.blocks[e.ID] = e
	}
	for _, e := range r.Irreversible {
		m.canonical[e.Height] = e.ID
	}
	if r.Checkpoint != nil {
		for _, w := range r.Checkpoint.Writes {
			m.state[string(w.DatabaseKey)] = w.Value
		}
	}
	m.meta, m.hasMeta = r.Meta, true
}

// harness drives a Chain the way the node does: step, commit, advance.
type harness struct {
	t         *testing.T
	g         *genesis.Genesis
	store     *memStorage
	c         *Chain
	producers []keys.Signer
	users     []keys.Signer
	ckEvery   uint64
	maxFork   int // Config.MaxForkBlocks (0: the default)
	vmCfg     vm.Config
}

const initialBalance = 1_000_000_000_000 // 10,000 tokens of 8 decimals

func newHarness(t *testing.T, nProducers, nUsers int) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStorage(), ckEvery: 1}
	balances := map[koinos.Address]uint64{}
	for i := 0; i < nProducers; i++ {
		h.producers = append(h.producers, keys.Ed25519FromSeed(seed(fmt.Sprintf("producer-%d", i))))
	}
	for i := 0; i < nUsers; i++ {
		var k keys.Signer
		if i%2 == 0 {
			k, _ = keys.Secp256k1FromBytes(seed(fmt.Sprintf("user-%d", i)))
		} else {
			k = keys.Ed25519FromSeed(seed(fmt.Sprintf("user-%d", i)))
		}
		h.users = append(h.users, k)
		balances[k.Address()] = initialBalance
	}
	var prods []koinos.Address
	for _, p := range h.producers {
		prods = append(prods, p.Address())
	}
	g, err := genesis.Dev(genesis.DevOptions{
		Producers: prods, Balances: balances, TokenAuthority: h.users[0].Address(),
		Now: time.UnixMilli(1_700_000_000_000),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	h.open()
	return h
}

func seed(s string) []byte {
	d := koinos.Sum256([]byte(s))
	return d[:]
}

func (h *harness) open() {
	h.t.Helper()
	c, r, err := Open(Config{Genesis: h.g, Storage: h.store, CheckpointInterval: h.ckEvery, MaxForkBlocks: h.maxFork, VM: h.vmCfg})
	if err != nil {
		h.t.Fatal(err)
	}
	h.c = c
	h.t.Cleanup(func() { _ = c.Close() })
	h.store.commit(r)
	c.Advance(r)
}

func (h *harness) step(r *Ready, err error) *Ready {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	h.store.commit(r)
	h.c.Advance(r)
	return r
}

func (h *harness) interval() uint64 { return h.g.Params().BlockIntervalMs }

// nextSlotOf returns the first slot after the head's in which producer p
// may produce.
func (h *harness) nextSlotOf(p int, after uint64) uint64 {
	s := h.c.slot(after) + 1
	for h.c.ScheduledProducer(s) != h.producers[p].Address() {
		s++
	}
	return s
}

// produce builds, signs and commits a block on the head from producer p.
func (h *harness) produce(p int, txs ...*protocol.Transaction) (*Ready, *Proposal) {
	h.t.Helper()
	vtxs := h.verify(txs...)
	ts := h.c.SlotTime(h.nextSlotOf(p, h.c.HeadTime()))
	prop, err := h.c.Build(ts, h.producers[p].Address(), vtxs)
	if err != nil {
		h.t.Fatal(err)
	}
	r := h.step(h.c.Commit(prop, h.producers[p].Sign(prop.ID)))
	return r, prop
}

func (h *harness) verify(txs ...*protocol.Transaction) []*sigverify.VerifiedTx {
	h.t.Helper()
	out := make([]*sigverify.VerifiedTx, len(txs))
	for i, tx := range txs {
		v, err := sigverify.Verify(tx, h.c.Limits())
		if err != nil {
			h.t.Fatalf("verify tx %d: %v", i, err)
		}
		out[i] = v
	}
	return out
}

func (h *harness) transfer(from, to int, value, nonce uint64) *protocol.Transaction {
	h.t.Helper()
	return h.transferRC(from, to, value, nonce, 10_000_000)
}

func (h *harness) transferRC(from, to int, value, nonce, rc uint64) *protocol.Transaction {
	h.t.Helper()
	tx, err := txbuilder.Transfer(h.users[from], h.c.Token().ID(), h.users[to].Address(), value,
		txbuilder.Header{ChainID: h.c.Limits().ChainID, Nonce: nonce, RcLimit: rc})
	if err != nil {
		h.t.Fatal(err)
	}
	return tx
}

func (h *harness) account(i int) (bal, nonce uint64) {
	h.t.Helper()
	a, err := h.c.View().Account(h.users[i].Address())
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Balance, a.Nonce
}

// blockOn builds a signed block by producer p at slot on parent, without
// committing it (for forks and bad blocks); mutate edits the header before
// signing.
func (h *harness) blockOn(p int, slot uint64, mutate func(*protocol.Block), txs ...*protocol.Transaction) *sigverify.VerifiedBlock {
	h.t.Helper()
	// Build on a throwaway chain that has the same blocks, so the main one
	// is untouched: simplest is to build on the main chain and discard.
	prop, err := h.c.Build(h.c.SlotTime(slot), h.producers[p].Address(), h.verify(txs...))
	if err != nil {
		h.t.Fatal(err)
	}
	b := prop.Block.CloneVT()
	if mutate != nil {
		mutate(b)
		b.Id = koinos.BlockID(b.Header).Multihash()
	}
	id, _ := koinos.ParseMultihash(b.Id)
	b.Signature = h.producers[p].Sign(id)
	vb, err := sigverify.VerifyBlock(b, h.c.Limits(), 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return vb
}
