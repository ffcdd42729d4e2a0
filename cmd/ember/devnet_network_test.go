//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/internal/syncbuf"
	"github.com/emberchain/ember/node/keyfile"
	"github.com/emberchain/ember/proto/koinos/protocol"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	"github.com/emberchain/ember/rpcgw/client"
)

// devnetRun is an `ember devnet` process and clients of its nodes.
type devnetRun struct {
	t       *testing.T
	dir     string
	cmd     *exec.Cmd
	out     *syncbuf.Buffer
	clients []*client.Client
	pids    []int
	g       *genesis.Genesis
	exited  chan struct{}
}

func startDevnet(t *testing.T, n int, interval time.Duration) *devnetRun {
	t.Helper()
	d := &devnetRun{t: t, dir: filepath.Join(t.TempDir(), "devnet"), out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	o := devnetPorts(t, n)
	d.cmd = exec.Command(os.Args[0], "devnet", "--nodes", strconv.Itoa(n), "--datadir", d.dir, "--block-interval", interval.String(),
		"--rpc-port", strconv.Itoa(o.RPCPort), "--p2p-port", strconv.Itoa(o.P2PPort), "--admin-port", strconv.Itoa(o.AdminPort))
	d.cmd.Env = append(os.Environ(), "EMBER_TEST_MAIN=1")
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.exited:
		case <-time.After(devnetStopTimeout + 5*time.Second):
			d.cmd.Process.Kill()
			<-d.exited
		}
	})
	for i := 0; i < n; i++ {
		c, _ := client.New(fmt.Sprintf("http://127.0.0.1:%d/", o.RPCPort+i))
		d.clients = append(d.clients, c)
		waitRPC(t, c, stringerFunc(d.logs))
	}
	d.pids = make([]int, n)
	for _, line := range strings.Split(d.out.String(), "\n") {
		f := strings.Fields(line)
		for i := range d.pids {
			if len(f) >= 2 && f[0] == devnetNodeName(i) {
				d.pids[i], _ = strconv.Atoi(f[1])
			}
		}
	}
	gb, err := os.ReadFile(filepath.Join(d.dir, "node0", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.g, err = genesis.Parse(gb); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *devnetRun) logs() string {
	var b strings.Builder
	b.WriteString(d.out.String())
	for i := range d.clients {
		l, _ := os.ReadFile(filepath.Join(d.dir, devnetNodeName(i), "node.log"))
		if len(l) > 3000 {
			l = l[len(l)-3000:]
		}
		fmt.Fprintf(&b, "\n--- node%d.log (tail):\n%s", i, l)
	}
	return b.String()
}

func (d *devnetRun) call(i int, method string, req, resp proto.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.clients[i].Call(ctx, method, req, resp)
}

func (d *devnetRun) head(i int) *chainrpc.GetHeadInfoResponse {
	var r chainrpc.GetHeadInfoResponse
	if err := d.call(i, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
		return nil
	}
	return &r
}

// blockAt is the id of the block at height h on node i's head chain.
func (d *devnetRun) blockAt(i int, h uint64) []byte {
	hd := d.head(i)
	if hd == nil || hd.HeadTopology.Height < h {
		return nil
	}
	var r blockstorerpc.GetBlocksByHeightResponse
	if err := d.call(i, "block_store.get_blocks_by_height", &blockstorerpc.GetBlocksByHeightRequest{HeadBlockId: hd.HeadTopology.Id, AncestorStartHeight: h, NumBlocks: 1}, &r); err != nil || len(r.BlockItems) != 1 {
		return nil
	}
	return r.BlockItems[0].BlockId
}

// onChain is how many blocks on node i's head chain hold transaction id.
func (d *devnetRun) onChain(i int, id []byte) int {
	var r txstorerpc.GetTransactionsByIdResponse
	if err := d.call(i, "transaction_store.get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: [][]byte{id}}, &r); err != nil || len(r.Transactions) != 1 {
		return 0
	}
	n := 0
	for _, bid := range r.Transactions[0].ContainingBlocks {
		var b blockstorerpc.GetBlocksByIdResponse
		if err := d.call(i, "block_store.get_blocks_by_id", &blockstorerpc.GetBlocksByIdRequest{BlockIds: [][]byte{bid}}, &b); err != nil || len(b.BlockItems) != 1 {
			continue
		}
		if at := d.blockAt(i, b.BlockItems[0].BlockHeight); string(at) == string(bid) {
			n++
		}
	}
	return n
}

func (d *devnetRun) waitFor(timeout time.Duration, what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out after %s waiting for %s:\n%s", timeout, what, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *devnetRun) submit(i int, tx *protocol.Transaction) {
	d.t.Helper()
	var r chainrpc.SubmitTransactionResponse
	if err := d.call(i, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &r); err != nil {
		d.t.Fatalf("submit to node%d: %v", i, err)
	}
}

// sameLIB waits until every listed node's last irreversible block is at
// least min and they agree on the block at the lowest of them.
func (d *devnetRun) sameLIB(nodes []int, least uint64) {
	d.t.Helper()
	d.waitFor(60*time.Second, fmt.Sprintf("the same irreversible block (>= %d) on nodes %v", least, nodes), func() bool {
		low := uint64(1 << 62)
		for _, i := range nodes {
			h := d.head(i)
			if h == nil {
				return false
			}
			low = min(low, h.LastIrreversibleBlock)
		}
		if low < least {
			return false
		}
		want := d.blockAt(nodes[0], low)
		for _, i := range nodes[1:] {
			if got := d.blockAt(i, low); want == nil || string(got) != string(want) {
				return false
			}
		}
		return true
	})
}

// A four-producer devnet of processes: the nodes agree on irreversible
// blocks; a transaction submitted to any node is included once; koilib
// sends to one node and waits on another; a node killed with SIGKILL and
// restarted catches up by sync and produces in its slots again.
func TestDevnetNetwork(t *testing.T) {
	d := startDevnet(t, 4, 300*time.Millisecond)
	all := []int{0, 1, 2, 3}
	d.sameLIB(all, 5)

	dev, err := keyfile.Read(filepath.Join(d.dir, "dev.key"))
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(nonce uint64) txbuilder.Header {
		return txbuilder.Header{ChainID: d.g.ChainID().Multihash(), Nonce: nonce, RcLimit: 100_000_000}
	}
	// Fund four accounts through node0, then each sends through its own
	// node.
	users := make([]keys.Signer, 4)
	var funding *protocol.Transaction
	for i := range users {
		users[i] = keys.Ed25519FromSeed(koinos.Sum256([]byte(fmt.Sprint("devnet-user", i))).Multihash()[2:])
		if funding, err = txbuilder.Transfer(dev, d.g.TokenID(), users[i].Address(), 1_000_000_000, hdr(uint64(i+1))); err != nil {
			t.Fatal(err)
		}
		d.submit(0, funding)
	}
	// Each user sends through its own node next, so every node must hold the
	// funding first (waiting on node3 alone let node1 refuse a transfer for
	// "payer has 0 mana" under load). The last funding transfer has the
	// highest nonce: holding it, a node holds them all.
	d.waitFor(30*time.Second, "the funding on every node", func() bool {
		for i := range 4 {
			if d.onChain(i, funding.Id) != 1 {
				return false
			}
		}
		return true
	})
	to := keys.Ed25519FromSeed(koinos.Sum256([]byte("devnet-recipient")).Multihash()[2:]).Address()
	var txs []*protocol.Transaction
	for i, u := range users {
		tx, err := txbuilder.Transfer(u, d.g.TokenID(), to, 100, hdr(1))
		if err != nil {
			t.Fatal(err)
		}
		d.submit(i, tx)
		txs = append(txs, tx)
	}
	for k, tx := range txs {
		d.waitFor(30*time.Second, fmt.Sprintf("transaction %d once on every node", k), func() bool {
			for _, i := range all {
				if d.onChain(i, tx.Id) != 1 {
					return false
				}
			}
			return true
		})
	}

	t.Run("koilib", func(t *testing.T) {
		nodeBin, err := exec.LookPath("node")
		js := filepath.Join("..", "..", "node", "testdata", "koilib")
		if _, serr := os.Stat(filepath.Join(js, "node_modules", "koilib")); err != nil || serr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("node and koilib are required in CI (make js-deps): %v %v", err, serr)
			}
			t.Skip("node or koilib not installed (make js-deps)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		recipient := keys.Ed25519FromSeed(koinos.Sum256([]byte("devnet-koilib")).Multihash()[2:]).Address()
		cmd := exec.CommandContext(ctx, nodeBin, "network.js", d.clients[1].URL(), d.clients[2].URL(), dev.String(), d.g.TokenID().String(), recipient.String())
		cmd.Dir = js
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("koilib: %v\n%s", err, stderr)
		}
		var got struct {
			BlockHasTx bool   `json:"blockHasTx"`
			ToAfter    string `json:"toAfter"`
		}
		if err := json.Unmarshal(out, &got); err != nil || !got.BlockHasTx || got.ToAfter != "777" {
			t.Fatalf("koilib saw %s (%v)", out, err)
		}
	})

	t.Run("killed and restarted", func(t *testing.T) {
		const victim = 2
		if d.pids[victim] == 0 {
			t.Fatalf("no pid for node%d:\n%s", victim, d.out.String())
		}
		if err := syscall.Kill(d.pids[victim], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d.waitFor(10*time.Second, "the kill reported", func() bool {
			return strings.Contains(d.out.String(), fmt.Sprintf(`node=node%d status="signal: killed"`, victim))
		})
		// The other three go on, and finalize (3 of 4 producers).
		h := d.head(0).LastIrreversibleBlock
		d.waitFor(30*time.Second, "irreversibility without the victim", func() bool { return d.head(0).LastIrreversibleBlock >= h+3 })
		restarted, logs := emberProcess(t, "node", "--datadir", filepath.Join(d.dir, devnetNodeName(victim)))
		t.Cleanup(func() {
			restarted.Process.Signal(syscall.SIGTERM)
			restarted.Wait()
		})
		before := strings.Count(logs.String(), `msg="produced block"`)
		top := d.head(0).HeadTopology.Height
		d.waitFor(30*time.Second, "the restarted node to catch up", func() bool {
			h := d.head(victim)
			return h != nil && h.HeadTopology.Height >= top
		})
		d.waitFor(30*time.Second, "the restarted node to produce again", func() bool {
			return strings.Count(logs.String(), `msg="produced block"`) > before
		})
		d.sameLIB(all, d.head(0).LastIrreversibleBlock+2)
	})
}
