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
	// amqp, when set, puts every node on the bus (AMQP RPC).
	amqp *AMQPConfig
	// maxFork, when set, is every node's chain.max_fork_blocks.
	maxFork int
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
	// Registered after the directory, so it runs before its removal.
	c.t.Cleanup(m.stop)
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
		P2P:  &p2p.Config{Identity: m.identity, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: m.peers},
		AMQP: m.c.amqp, MaxForkBlocks: m.c.maxFork,
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

// sameChain checks every node has the same block at height h on its head
// chain and returns its id.
func (c *cluster) sameChain(h uint64) (koinos.Digest, bool) {
	var want koinos.Digest
	for i, m := range c.nodes {
		if m.cancel == nil {
			continue
		}
		v := m.n.Chain().View()
		if v.Head.Height < h {
			return want, false
		}
		id, err := m.n.Store().BlockIDAt(v.Head.ID, h)
		if err != nil {
			return want, false
		}
		if i > 0 && id != want {
			return want, false
		}
		want = id
	}
	return want, true
}

// logState logs each running node's head and last irreversible block, for
// a test that failed waiting for them to agree.
func (c *cluster) logState(t *testing.T) {
	for i, m := range c.nodes {
		if m.cancel == nil {
			continue
		}
		v := m.n.Chain().View()
		t.Logf("node %d: head %d (0x%x), LIB %d (0x%x)", i, v.Head.Height, v.Head.ID.Multihash(), v.LIB.Height, v.LIB.ID.Multihash())
	}
}

// builtAbove reports whether each of the producers (by node index; node
// i holds producer key i) signed a block above height h on m's head chain.
func (m *member) builtAbove(h uint64, producers []int) bool {
	seen := map[koinos.Address]bool{}
	v := m.n.Chain().View()
	for id, height := v.Head.ID, v.Head.Height; height > h; height-- {
		e, err := m.n.Store().BlockByID(id)
		if err != nil || e == nil {
			return false
		}
		if a, err := koinos.ParseAddress(e.Block.Header.GetSigner()); err == nil {
			seen[a] = true
		}
		id = e.Previous
	}
	for _, p := range producers {
		if !seen[m.c.producers[p].Address()] {
			return false
		}
	}
	return true
}

func (c *cluster) minLIB() uint64 {
	low := uint64(1 << 62)
	for _, m := range c.nodes {
		if m.cancel != nil {
			low = min(low, m.lib())
		}
	}
	return low
}

// Four producers take turns: every node reaches the same irreversible
// blocks, and a transaction submitted to any node is included once.
func TestFourProducers(t *testing.T) {
	c := newCluster(t, 4, 4, 200*time.Millisecond)
	for i := 0; i < 4; i++ {
		c.add(i)
	}
	waitFor(t, 30*time.Second, "irreversibility on every node", func() bool { return c.minLIB() >= 8 })
	if _, ok := c.sameChain(c.minLIB()); !ok {
		t.Fatal("the nodes disagree on an irreversible block")
	}
	to := keys.Ed25519FromSeed(seed("recipient")).Address()
	var txs []*protocol.Transaction
	for i, m := range c.nodes {
		tx := c.transfer(i, to, 100, 1)
		if err := m.submit(tx); err != nil {
			t.Fatalf("submit to node %d: %v", i, err)
		}
		txs = append(txs, tx)
	}
	for i, tx := range txs {
		waitFor(t, 20*time.Second, fmt.Sprintf("node %d's transaction on every node", i), func() bool {
			for _, m := range c.nodes {
				if m.included(tx.Id) == 0 {
					return false
				}
			}
			return true
		})
	}
	lib := c.minLIB()
	waitFor(t, 20*time.Second, "irreversibility to pass the transactions", func() bool {
		for _, tx := range txs {
			if h := c.nodes[0].included(tx.Id); h == 0 || h > c.minLIB() {
				return false
			}
		}
		return c.minLIB() > lib
	})
	for i, tx := range txs {
		d, _ := koinos.ParseMultihash(tx.Id)
		for j, m := range c.nodes {
			items, err := m.n.Store().TransactionsByID([]koinos.Digest{d})
			if err != nil {
				t.Fatal(err)
			}
			onChain := 0
			head := m.n.Chain().View().Head.ID
			for _, bid := range items[0].ContainingBlocks {
				e, _ := m.n.Store().BlockByID(bid)
				if id, err := m.n.Store().BlockIDAt(head, e.Height); err == nil && id == bid {
					onChain++
				}
			}
			if onChain != 1 {
				t.Fatalf("transaction %d is %d times on node %d's chain", i, onChain, j)
			}
		}
	}
	// The verify-once cache held: each node checked each transaction's
	// signatures once (from the API or a gossip batch), not again when the
	// transaction came back inside a block.
	for _, m := range c.nodes {
		if v := m.n.Stats().Verify.Verified; v != uint64(len(txs)) {
			t.Fatalf("node %d verified %d transactions for %d distinct ones", m.i, v, len(txs))
		}
	}
	want := c.nodes[0].n.Chain().View()
	for _, m := range c.nodes[1:] {
		a, _ := m.n.Chain().View().Account(to)
		b, _ := want.Account(to)
		if a.Balance != b.Balance || b.Balance != 400 {
			t.Fatalf("recipient balance %d on node %d, %d on node 0", a.Balance, m.i, b.Balance)
		}
	}
	waitFor(t, 20*time.Second, "every node to produce", func() bool {
		for _, m := range c.nodes {
			if m.n.Stats().Producer.Produced == 0 {
				return false
			}
		}
		return true
	})
}

// partition splits the cluster in two: each side bans the other's peers.
func (c *cluster) partition(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			c.nodes[i].n.Network().Ban(c.nodes[j].n.Network().ID(), time.Hour)
			c.nodes[j].n.Network().Ban(c.nodes[i].n.Network().ID(), time.Hour)
		}
	}
}

func (c *cluster) heal() {
	for _, m := range c.nodes {
		for _, o := range c.nodes {
			if m != o {
				m.n.Network().Unban(o.n.Network().ID())
			}
		}
	}
}

// A 2-2 split stops irreversibility on both sides; after the heal there is
// one chain, no irreversible block was reverted, and blocks are produced
// and become irreversible again within a few slots.
func TestPartitionAndHeal(t *testing.T) {
	c := newCluster(t, 4, 2, 200*time.Millisecond)
	for i := 0; i < 4; i++ {
		c.add(i)
	}
	waitFor(t, 30*time.Second, "irreversibility", func() bool { return c.minLIB() >= 5 })
	c.partition([]int{0, 1}, []int{2, 3})
	// One transaction on each side: each is included there, and one side's
	// blocks will be undone by the heal.
	to := keys.Ed25519FromSeed(seed("recipient")).Address()
	split := []*protocol.Transaction{c.transfer(0, to, 1, 1), c.transfer(1, to, 2, 1)}
	if err := c.nodes[0].submit(split[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[2].submit(split[1]); err != nil {
		t.Fatal(err)
	}
	// The last blocks before the split may still finalize one or two more
	// on each side: a block is irreversible once three of the four
	// producers built on it, and those blocks were signed by producers of
	// both sides. That ends once both producers of a side have built on
	// their side's branch: every block above has only their two signatures.
	// (A fixed wait of four slots was too short when a producer missed its
	// slot under load: the LIB moved from 5 to 7 after it.)
	splitTop := uint64(0) // every block above was built after the split
	for _, m := range c.nodes {
		splitTop = max(splitTop, m.head())
	}
	sides := [][]int{{0, 1}, {2, 3}}
	waitFor(t, 30*time.Second, "both producers of each side to build on its branch", func() bool {
		for _, side := range sides {
			for _, i := range side {
				if !c.nodes[i].builtAbove(splitTop, side) {
					return false
				}
			}
		}
		return true
	})
	// Then irreversibility must stop on both sides while both keep
	// producing.
	libs := make([]uint64, 4)
	libIDs := make([]koinos.Digest, 4)
	heads := make([]uint64, 4)
	for i, m := range c.nodes {
		v := m.n.Chain().View()
		libs[i], libIDs[i], heads[i] = v.LIB.Height, v.LIB.ID, v.Head.Height
	}
	waitFor(t, 30*time.Second, "each side to build three more blocks", func() bool {
		for i, m := range c.nodes {
			if m.head() < heads[i]+3 {
				return false
			}
		}
		return true
	})
	for i, m := range c.nodes {
		if v := m.n.Chain().View(); v.LIB.Height != libs[i] {
			t.Fatalf("node %d: irreversibility moved from %d to %d during the split", i, libs[i], v.LIB.Height)
		}
	}
	healed := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			c.logState(t) // CI timed out here twice at high load: what did each node hold?
		}
	})
	c.heal()
	top := uint64(0)
	for _, m := range c.nodes {
		top = max(top, m.head())
	}
	waitFor(t, 30*time.Second, "one chain after the heal", func() bool {
		_, same := c.sameChain(top)
		return same
	})
	waitFor(t, 30*time.Second, "irreversibility after the heal", func() bool { return c.minLIB() > max(libs[0], libs[2]) })
	if d := time.Since(healed); d > 10*c.interval {
		t.Logf("irreversibility resumed %s after the heal (%d intervals)", d.Round(time.Millisecond), d/c.interval)
	}
	for i, m := range c.nodes {
		v := m.n.Chain().View()
		id, err := m.n.Store().BlockIDAt(v.Head.ID, libs[i])
		if err != nil || id != libIDs[i] {
			t.Fatalf("node %d: the irreversible block at %d was reverted", i, libs[i])
		}
	}
	// The side that lost put its transaction back into its mempool, and
	// both are on the one chain, once.
	for i, tx := range split {
		waitFor(t, 20*time.Second, fmt.Sprintf("split transaction %d on the joined chain", i), func() bool {
			for _, m := range c.nodes {
				if m.included(tx.Id) == 0 {
					return false
				}
			}
			return true
		})
	}
	if got, _ := c.nodes[3].n.Chain().View().Account(to); got.Balance != 3 {
		t.Fatalf("recipient balance %d after the heal, want 3", got.Balance)
	}
	// Production resumed: a block produced after the heal is on every node
	// within three slots of the chains joining.
	joined := c.nodes[0].head()
	waitFor(t, 3*c.interval+2*time.Second, "a new block on every node", func() bool {
		_, same := c.sameChain(joined + 1)
		return same
	})
}

// TestLongPartitionHeals: a 2–2 split that lasts longer than the fork
// database could hold (chain.max_fork_blocks 16 here): each side stops
// producing at its bound instead of growing a branch the other could not
// take back, and after the heal the network is one chain again with
// irreversibility moving. Before the bound on production, the four nodes
// ended on four heads for good.
func TestLongPartitionHeals(t *testing.T) {
	c := newCluster(t, 4, 0, 200*time.Millisecond)
	c.maxFork = 16
	for i := 0; i < 4; i++ {
		c.add(i)
	}
	waitFor(t, 30*time.Second, "irreversibility", func() bool { return c.minLIB() >= 3 })
	c.partition([]int{0, 1}, []int{2, 3})
	// Each side stops: its head stays put for four slots.
	waitFor(t, 60*time.Second, "both sides to stop producing", func() bool {
		before := make([]uint64, 4)
		for i, m := range c.nodes {
			before[i] = m.head()
		}
		time.Sleep(4 * c.interval)
		for i, m := range c.nodes {
			if m.head() != before[i] {
				return false
			}
		}
		return true
	})
	for i, m := range c.nodes {
		if v := m.n.Chain().View(); v.Head.Height-v.LIB.Height > uint64(c.maxFork/2) {
			t.Fatalf("node %d: %d blocks above the last irreversible one, more than half of max_fork_blocks", i, v.Head.Height-v.LIB.Height)
		}
	}
	lib := c.minLIB()
	c.heal()
	waitFor(t, 60*time.Second, "irreversibility after the heal", func() bool { return c.minLIB() > lib+2 })
	top := c.nodes[0].head()
	waitFor(t, 30*time.Second, "one chain after the heal", func() bool {
		_, same := c.sameChain(top)
		return same
	})
}

// A producer killed and restarted (its data kept) catches up by sync and
// produces in its slots again.
func TestRestartedProducerCatchesUp(t *testing.T) {
	c := newCluster(t, 4, 0, 200*time.Millisecond)
	for i := 0; i < 4; i++ {
		c.add(i)
	}
	waitFor(t, 30*time.Second, "irreversibility", func() bool { return c.minLIB() >= 3 })
	m := c.nodes[3]
	m.stop()
	time.Sleep(15 * c.interval) // the other three go on and finalize (3 of 4)
	produced := uint64(0)
	m.start()
	top := c.nodes[0].head()
	waitFor(t, 30*time.Second, "the restarted node to catch up", func() bool { return m.head() >= top })
	waitFor(t, 30*time.Second, "the restarted node to produce again", func() bool { return m.n.Stats().Producer.Produced > produced })
	waitFor(t, 30*time.Second, "its block on every node", func() bool {
		_, same := c.sameChain(m.n.Stats().Producer.LastHeight)
		return same
	})
}

// A transaction submitted to a node that has no peer yet is gossiped
// again once it has one, and is included.
func TestUnconfirmedTransactionsAreResent(t *testing.T) {
	c := newCluster(t, 1, 1, 100*time.Millisecond)
	prod := c.add(0)
	lonely := &member{c: c, i: 1, dir: t.TempDir()}
	t.Cleanup(lonely.stop)
	id, err := p2p.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	lonely.identity = id
	c.nodes = append(c.nodes, lonely)
	lonely.start() // no static peer
	tx := c.transfer(0, keys.Ed25519FromSeed(seed("recipient")).Address(), 9, 1)
	if err := lonely.submit(tx); err != nil {
		t.Fatal(err)
	}
	// Gossipsub itself offers its last few seconds of messages to a new
	// peer (its message cache: 5 heartbeats); wait past that.
	waitFor(t, 5*time.Second, "the batch to go out to no one", func() bool { return lonely.n.Network().Stats().Unconfirmed == 1 })
	time.Sleep(6 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lonely.n.Network().Connect(ctx, prod.n.Network().Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the resent transaction in the producer's chain", func() bool { return prod.included(tx.Id) > 0 })
	if st := lonely.n.Network().Stats(); st.Resent == 0 {
		t.Fatalf("included without a resend: %+v", st)
	}
	waitFor(t, 5*time.Second, "the lonely node to forget it", func() bool { return lonely.n.Network().Stats().Unconfirmed == 0 })
}
