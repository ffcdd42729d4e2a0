package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw/client"
)

// cluster is several nodes of one chain in this process, on loopback,
// each with its own data directory, JSON-RPC port and p2p host.
type cluster struct {
	t         *testing.T
	g         *genesis.Genesis
	producers []keys.Signer
	users     []keys.Signer
	interval  time.Duration
	nodes     []*member
}

// member is one node of a cluster.
type member struct {
	c        *cluster
	i        int
	dir      string
	key      keys.Signer // nil: follows
	identity crypto.PrivKey
	n        *Node
	rpc      *client.Client
	cancel   context.CancelFunc
	done     chan error
	peers    []string
}

// newCluster makes a genesis with nProducers producers and nUsers funded
// users; no node runs yet.
func newCluster(t *testing.T, nProducers, nUsers int, interval time.Duration) *cluster {
	t.Helper()
	c := &cluster{t: t, interval: interval}
	var addrs []koinos.Address
	for i := 0; i < nProducers; i++ {
		k := keys.Ed25519FromSeed(seed(fmt.Sprint("cluster-producer", i)))
		c.producers = append(c.producers, k)
		addrs = append(addrs, k.Address())
	}
	balances := map[koinos.Address]uint64{}
	for i := 0; i < nUsers; i++ {
		var k keys.Signer = keys.Ed25519FromSeed(seed(fmt.Sprint("cluster-user", i)))
		if i%2 == 1 {
			k, _ = keys.Secp256k1FromBytes(seed(fmt.Sprint("cluster-user", i)))
		}
		c.users = append(c.users, k)
		balances[k.Address()] = testFunds
	}
	g, err := genesis.Dev(genesis.DevOptions{Producers: addrs, Balances: balances, BlockIntervalMs: uint64(interval.Milliseconds()), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	c.g = g
	t.Cleanup(c.stopAll)
	return c
}

// testLogger logs to stderr with the node's index when EMBER_TEST_LOG is
// set (debugging a network test), and nowhere otherwise.
func testLogger(i int) *slog.Logger {
	if os.Getenv("EMBER_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
}

// add starts a node: producer key index (-1: a follower), static peers the
// nodes already running.
func (c *cluster) add(producer int) *member {
	c.t.Helper()
	m := &member{c: c, i: len(c.nodes), dir: c.t.TempDir()}
	if producer >= 0 {
		m.key = c.producers[producer]
	}
	for _, o := range c.nodes {
		if o.n != nil {
			m.peers = append(m.peers, o.n.Network().Addrs()[0])
		}
	}
	id, err := p2p.NewIdentity()
	if err != nil {
		c.t.Fatal(err)
	}
	m.identity = id
	c.nodes = append(c.nodes, m)
	m.start()
	return m
}

func (m *member) start() {
	t := m.c.t
	t.Helper()
	cfg := Config{
		DataDir: m.dir, Genesis: m.c.g, ProducerKey: m.key, RPCListen: "127.0.0.1:0", Logger: testLogger(m.i),
		P2P: &p2p.Config{Identity: m.identity, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: m.peers},
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.n, m.cancel, m.done = n, cancel, make(chan error, 1)
	go func() { m.done <- n.Run(ctx) }()
	select {
	case <-n.Started():
	case err := <-m.done:
		t.Fatalf("node %d stopped at start: %v", m.i, err)
	}
	if m.rpc, err = client.New("http://" + n.RPCAddr() + "/"); err != nil {
		t.Fatal(err)
	}
}

func (m *member) stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	if err := <-m.done; err != nil {
		m.c.t.Errorf("node %d stopped with: %v", m.i, err)
	}
	m.rpc.Close()
	m.cancel = nil
}

func (c *cluster) stopAll() {
	for _, m := range c.nodes {
		m.stop()
	}
}

func (m *member) head() uint64 { return m.n.Chain().View().Head.Height }
func (m *member) lib() uint64  { return m.n.Chain().View().LIB.Height }

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) transfer(from int, to koinos.Address, value, nonce uint64) *protocol.Transaction {
	c.t.Helper()
	tx, err := txbuilder.Transfer(c.users[from], c.g.TokenID(), to, value, txbuilder.Header{ChainID: c.g.ChainID().Multihash(), Nonce: nonce, RcLimit: 100_000_000})
	if err != nil {
		c.t.Fatal(err)
	}
	return tx
}

func (m *member) submit(tx *protocol.Transaction) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r chainrpc.SubmitTransactionResponse
	return m.rpc.Call(ctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &r)
}

// included returns the height of the block holding tx on m's head chain,
// or 0.
func (m *member) included(id []byte) uint64 {
	d, err := koinos.ParseMultihash(id)
	if err != nil {
		m.c.t.Fatal(err)
	}
	items, err := m.n.Store().TransactionsByID([]koinos.Digest{d})
	if err != nil || len(items) == 0 || items[0].Tx == nil {
		return 0
	}
	v := m.n.Chain().View()
	for _, bid := range items[0].ContainingBlocks {
		e, err := m.n.Store().BlockByID(bid)
		if err != nil || e.Height > v.Head.Height {
			continue
		}
		if id, err := m.n.Store().BlockIDAt(v.Head.ID, e.Height); err == nil && id == bid {
			return e.Height
		}
	}
	return 0
}

// A follower syncs a producer's chain, then follows it by gossip, and the
// transactions submitted to it are included by the producer.
func TestFollowerSyncsThenFollowsByGossip(t *testing.T) {
	c := newCluster(t, 1, 2, 100*time.Millisecond)
	prod := c.add(0)
	to := keys.Ed25519FromSeed(seed("recipient")).Address()
	for i := uint64(1); i <= 5; i++ {
		if err := prod.submit(c.transfer(0, to, 10, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the producer's chain to grow", func() bool { return prod.head() >= 30 })
	f := c.add(-1)
	waitFor(t, 20*time.Second, "the follower to sync", func() bool { return f.head() >= 30 })
	waitFor(t, 5*time.Second, "sync's own count", func() bool { return f.n.Network().Stats().SyncBlocks >= 25 })
	// Now it follows by gossip.
	blocks := f.n.Network().Stats().Blocks.Accepted
	waitFor(t, 20*time.Second, "blocks by gossip", func() bool { return f.n.Network().Stats().Blocks.Accepted >= blocks+5 })
	// Transactions submitted to the follower reach the producer's blocks.
	var txs []*protocol.Transaction
	for i := uint64(1); i <= 5; i++ {
		tx := c.transfer(1, to, 3, i)
		if err := f.submit(tx); err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		waitFor(t, 20*time.Second, "the follower's transaction in a block", func() bool { return prod.included(tx.Id) > 0 && f.included(tx.Id) > 0 })
	}
	if v := f.n.Chain().View(); v.LIB.Height == 0 {
		t.Fatal("the follower's last irreversible block did not advance")
	}
	if !f.n.Network().GossipEnabled() {
		t.Fatal("gossip status is off on a follower with a peer")
	}
}
