package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/proto/koinos/protocol"
	acchistrpc "github.com/emberchain/ember/proto/koinos/rpc/account_history"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	"github.com/emberchain/ember/proto/tokenabi"
	"github.com/emberchain/ember/rpcgw/client"
	"github.com/emberchain/ember/store"
)

// testNet is one node run in-process on a temp dir, as a user would run it.
type testNet struct {
	t        *testing.T
	dir      string
	g        *genesis.Genesis
	producer keys.Signer
	users    []keys.Signer
	store    store.Options // for New; zero: the defaults
	amqp     *AMQPConfig   // for New; nil: no AMQP server
	n        *Node
	c        *client.Client
	cancel   context.CancelFunc
	done     chan error
	// logMempool sets Config.LogMempool at the next start.
	logMempool bool
	// configure, if set, adjusts the Config at every start.
	configure func(*Config)
}

const testFunds = 1_000_000_000_000

func newTestNet(t *testing.T, users int, interval time.Duration) *testNet {
	t.Helper()
	return newTestNetWith(t, users, interval, store.Options{})
}

func newTestNetWith(t *testing.T, users int, interval time.Duration, so store.Options) *testNet {
	t.Helper()
	return newTestNetConfigured(t, users, interval, func(c *Config) { c.Store = so })
}

// newTestNetConfigured is newTestNet with configure applied to the node's
// Config at every start.
func newTestNetConfigured(t *testing.T, users int, interval time.Duration, configure func(*Config)) *testNet {
	t.Helper()
	tn := &testNet{t: t, dir: t.TempDir(), configure: configure}
	tn.producer = keys.Ed25519FromSeed(seed("producer"))
	balances := map[koinos.Address]uint64{}
	for i := 0; i < users; i++ {
		var k keys.Signer
		if i%2 == 0 {
			k, _ = keys.Secp256k1FromBytes(seed(fmt.Sprint("user", i)))
		} else {
			k = keys.Ed25519FromSeed(seed(fmt.Sprint("user", i)))
		}
		tn.users = append(tn.users, k)
		balances[k.Address()] = testFunds
	}
	g, err := genesis.Dev(genesis.DevOptions{
		Producers: []koinos.Address{tn.producer.Address()}, Balances: balances,
		BlockIntervalMs: uint64(interval.Milliseconds()), Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tn.g = g
	tn.start()
	t.Cleanup(tn.stop)
	return tn
}

func seed(s string) []byte {
	d := koinos.Sum256([]byte(s))
	return d[:]
}

func (tn *testNet) start() {
	tn.t.Helper()
	cfg := Config{DataDir: tn.dir, Genesis: tn.g, ProducerKey: tn.producer, RPCListen: "127.0.0.1:0", Store: tn.store, AMQP: tn.amqp, LogMempool: tn.logMempool}
	if tn.configure != nil {
		tn.configure(&cfg)
		tn.store = cfg.Store
	}
	n, err := New(cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn.n, tn.cancel, tn.done = n, cancel, make(chan error, 1)
	go func() { tn.done <- n.Run(ctx) }()
	select {
	case <-n.Started():
	case err := <-tn.done:
		tn.t.Fatalf("node stopped at start: %v", err)
	}
	tn.c, err = client.New("http://" + n.RPCAddr() + "/")
	if err != nil {
		tn.t.Fatal(err)
	}
}

func (tn *testNet) stop() {
	if tn.cancel == nil {
		return
	}
	tn.cancel()
	if err := <-tn.done; err != nil {
		tn.t.Errorf("node stopped with: %v", err)
	}
	tn.c.Close()
	tn.cancel = nil
}

func (tn *testNet) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tn.t.Cleanup(cancel)
	return ctx
}

func (tn *testNet) call(method string, params, result proto.Message) error {
	return tn.c.Call(tn.ctx(), method, params, result)
}

func (tn *testNet) transfer(from int, to koinos.Address, value, nonce uint64) *protocol.Transaction {
	tn.t.Helper()
	tx, err := txbuilder.Transfer(tn.users[from], tn.g.TokenID(), to, value,
		txbuilder.Header{ChainID: tn.g.ChainID().Multihash(), Nonce: nonce, RcLimit: 100_000_000})
	if err != nil {
		tn.t.Fatal(err)
	}
	return tx
}

func (tn *testNet) submit(tx *protocol.Transaction) (*chainrpc.SubmitTransactionResponse, error) {
	var r chainrpc.SubmitTransactionResponse
	err := tn.call("chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &r)
	return &r, err
}

func (tn *testNet) balance(a koinos.Address) uint64 {
	tn.t.Helper()
	args, _ := (&tokenabi.BalanceOfArgs{Owner: a.Bytes()}).MarshalVT()
	var r chainrpc.ReadContractResponse
	if err := tn.call("chain.read_contract", &chainrpc.ReadContractRequest{ContractId: tn.g.TokenID().Bytes(), EntryPoint: contracts.EntryBalanceOf, Args: args}, &r); err != nil {
		tn.t.Fatal(err)
	}
	var v tokenabi.Uint64
	if err := v.UnmarshalVT(r.Result); err != nil {
		tn.t.Fatal(err)
	}
	return v.Value
}

func (tn *testNet) nonce(a koinos.Address) uint64 {
	tn.t.Helper()
	var r chainrpc.GetAccountNonceResponse
	if err := tn.call("chain.get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: a.Bytes()}, &r); err != nil {
		tn.t.Fatal(err)
	}
	n, err := koinos.DecodeNonce(r.Nonce)
	if err != nil {
		tn.t.Fatal(err)
	}
	return n
}

func (tn *testNet) head() *chainrpc.GetHeadInfoResponse {
	tn.t.Helper()
	var r chainrpc.GetHeadInfoResponse
	if err := tn.call("chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
		tn.t.Fatal(err)
	}
	return &r
}

// waitTx waits until a transaction is in a block and returns the block's
// height, checking through the transaction and block stores as koilib does.
func (tn *testNet) waitTx(id []byte) uint64 {
	tn.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var r txstorerpc.GetTransactionsByIdResponse
		if err := tn.call("transaction_store.get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: [][]byte{id}}, &r); err != nil {
			tn.t.Fatal(err)
		}
		if len(r.Transactions) == 1 && len(r.Transactions[0].ContainingBlocks) > 0 {
			var b blockstorerpc.GetBlocksByIdResponse
			if err := tn.call("block_store.get_blocks_by_id", &blockstorerpc.GetBlocksByIdRequest{BlockIds: r.Transactions[0].ContainingBlocks, ReturnBlock: true}, &b); err != nil {
				tn.t.Fatal(err)
			}
			return b.BlockItems[0].BlockHeight
		}
		time.Sleep(50 * time.Millisecond)
	}
	tn.t.Fatalf("transaction 0x%x not included", id)
	return 0
}

func TestTransfersAndRestart(t *testing.T) {
	tn := newTestNet(t, 3, 100*time.Millisecond)
	recipient := keys.Ed25519FromSeed(seed("recipient")).Address()
	var last *protocol.Transaction
	for i := uint64(1); i <= 5; i++ {
		for u := 0; u < 3; u++ {
			tx := tn.transfer(u, recipient, 100*i, i)
			r, err := tn.submit(tx)
			if err != nil {
				t.Fatalf("submit user %d nonce %d: %v", u, i, err)
			}
			if r.Receipt.GetReverted() || r.Receipt.GetRcUsed() == 0 || string(r.Receipt.GetId()) != string(tx.Id) {
				t.Fatalf("receipt %+v", r.Receipt)
			}
			last = tx
		}
	}
	height := tn.waitTx(last.Id)
	for tn.head().HeadTopology.Height < height {
		time.Sleep(20 * time.Millisecond)
	}
	const sent = 100 * (1 + 2 + 3 + 4 + 5)
	if got := tn.balance(recipient); got != 3*sent {
		t.Fatalf("recipient balance %d, want %d", got, 3*sent)
	}
	for u := 0; u < 3; u++ {
		if got := tn.balance(tn.users[u].Address()); got != testFunds-sent {
			t.Fatalf("user %d balance %d", u, got)
		}
		if got := tn.nonce(tn.users[u].Address()); got != 5 {
			t.Fatalf("user %d nonce %d", u, got)
		}
	}
	var hist acchistrpc.GetAccountHistoryResponse
	if err := tn.call("account_history.get_account_history", &acchistrpc.GetAccountHistoryRequest{Address: recipient.Bytes(), Limit: 100, Ascending: true}, &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Values) != 15 {
		t.Fatalf("recipient history has %d entries, want 15", len(hist.Values))
	}

	before := tn.head()
	tn.stop()
	tn.start()
	after := tn.head()
	if after.HeadTopology.Height < before.HeadTopology.Height {
		t.Fatalf("head went back from %d to %d", before.HeadTopology.Height, after.HeadTopology.Height)
	}
	var b blockstorerpc.GetBlocksByHeightResponse
	if err := tn.call("block_store.get_blocks_by_height", &blockstorerpc.GetBlocksByHeightRequest{HeadBlockId: after.HeadTopology.Id, AncestorStartHeight: before.HeadTopology.Height, NumBlocks: 1}, &b); err != nil {
		t.Fatal(err)
	}
	if string(b.BlockItems[0].BlockId) != string(before.HeadTopology.Id) {
		t.Fatal("the old head is not on the chain after restart")
	}
	if got := tn.balance(recipient); got != 3*sent {
		t.Fatalf("after restart: recipient balance %d", got)
	}
	if got := tn.nonce(tn.users[0].Address()); got != 5 {
		t.Fatalf("after restart: nonce %d", got)
	}
	if h := tn.waitTx(last.Id); h != height {
		t.Fatalf("after restart the transaction is in block %d, was %d", h, height)
	}
	// And the chain goes on.
	tx := tn.transfer(0, recipient, 1, 6)
	if _, err := tn.submit(tx); err != nil {
		t.Fatal(err)
	}
	tn.waitTx(tx.Id)
}

// chainCode extracts the Koinos error code from a client error.
func chainCode(err error) (int32, bool) {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return 0, false
	}
	c, ok := ce.ChainCode()
	return int32(c), ok
}

func TestSubmitRejectsBadTransactions(t *testing.T) {
	tn := newTestNet(t, 2, 100*time.Millisecond)
	to := tn.users[1].Address()
	stranger, _ := keys.Secp256k1FromBytes(seed("stranger"))
	chainID := tn.g.ChainID().Multihash()
	build := func(k keys.Signer, h txbuilder.Header, mutate func(*protocol.Transaction)) *protocol.Transaction {
		if h.ChainID == nil {
			h.ChainID = chainID
		}
		if h.RcLimit == 0 {
			h.RcLimit = 100_000_000
		}
		tx, err := txbuilder.Transfer(k, tn.g.TokenID(), to, 1, h)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(tx)
		}
		return tx
	}
	// One good transaction first, so nonce reuse can be tested.
	if _, err := tn.submit(build(tn.users[0], txbuilder.Header{Nonce: 1}, nil)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tx   *protocol.Transaction
		code int32
		msg  string
	}{
		// A corrupted secp256k1 signature recovers some other key.
		{"bad secp256k1 signature", build(tn.users[0], txbuilder.Header{Nonce: 2}, func(tx *protocol.Transaction) { tx.Signatures[0][60] ^= 1 }), -200, "not signed by its payer"},
		{"secp256k1 r off the curve", build(tn.users[0], txbuilder.Header{Nonce: 2}, func(tx *protocol.Transaction) { copy(tx.Signatures[0][1:33], make([]byte, 32)) }), -202, "cannot be recovered"},
		{"bad ed25519 signature", build(tn.users[1], txbuilder.Header{Nonce: 1}, func(tx *protocol.Transaction) { tx.Signatures[0][70] ^= 1 }), -202, "does not verify"},
		{"signed by someone else", build(stranger, txbuilder.Header{Nonce: 2, Payer: tn.users[0].Address()}, nil), -200, "not signed by its payer"},
		{"wrong chain id", build(tn.users[0], txbuilder.Header{Nonce: 2, ChainID: koinos.Sum256([]byte("other")).Multihash()}, nil), -204, "chain_id"},
		{"nonce gap", build(tn.users[0], txbuilder.Header{Nonce: 5}, nil), -201, "expected 2"},
		{"nonce reuse", build(tn.users[0], txbuilder.Header{Nonce: 1}, nil), -201, "expected 2"},
		{"rc over mana", build(tn.users[0], txbuilder.Header{Nonce: 2, RcLimit: testFunds * 2}, nil), 104, "mana"},
		{"unknown account", build(stranger, txbuilder.Header{Nonce: 1}, nil), 104, "mana"},
		{"tampered operation", build(tn.users[0], txbuilder.Header{Nonce: 2}, func(tx *protocol.Transaction) { tx.Operations[0].GetCallContract().Args = []byte{1} }), -204, "operation_merkle_root"},
		{"tampered id", build(tn.users[0], txbuilder.Header{Nonce: 2}, func(tx *protocol.Transaction) { tx.Id = koinos.ZeroMultihash() }), -204, "id does not match"},
		{"payer checksum", build(tn.users[0], txbuilder.Header{Nonce: 2}, func(tx *protocol.Transaction) {
			tx.Header.Payer[24] ^= 1
			tx.Id = koinos.TransactionID(tx.Header).Multihash()
			d, _ := koinos.ParseMultihash(tx.Id)
			tx.Signatures = [][]byte{tn.users[0].Sign(d)}
		}), -204, "checksum"},
		{"no signature", build(tn.users[0], txbuilder.Header{Nonce: 2}, func(tx *protocol.Transaction) { tx.Signatures = nil }), -202, "no signatures"},
		{"oversized", build(tn.users[0], txbuilder.Header{Nonce: 2}, func(tx *protocol.Transaction) {
			tx.Operations[0].GetCallContract().Args = make([]byte, 70_000)
		}), -204, "above the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tn.submit(tt.tx)
			if err == nil {
				t.Fatal("accepted")
			}
			code, ok := chainCode(err)
			if !ok || code != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v (chain code %d), want code %d and %q", err, code, tt.code, tt.msg)
			}
		})
	}
	// Nothing of it reached the chain or the pool.
	if got := tn.n.Mempool().Len(); got > 1 {
		t.Fatalf("pool has %d transactions", got)
	}
}

// TestBatchSubmission sends transactions as JSON-RPC batches, the way a
// busy client does: the batch is verified together (backend.Prepare), then
// each call is answered in order, as if sent alone.
func TestBatchSubmission(t *testing.T) {
	tn := newTestNet(t, 4, 100*time.Millisecond)
	to := keys.Ed25519FromSeed(seed("batch-recipient")).Address()
	var calls []client.BatchCall
	var ids [][]byte
	for nonce := uint64(1); nonce <= 5; nonce++ {
		for u := 0; u < 4; u++ {
			tx := tn.transfer(u, to, 10, nonce)
			ids = append(ids, tx.Id)
			calls = append(calls, client.BatchCall{Method: "chain.submit_transaction",
				Params: &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, Result: &chainrpc.SubmitTransactionResponse{}})
		}
	}
	bad := tn.transfer(0, to, 10, 6)
	bad.Signatures[0][60] ^= 1
	calls = append(calls,
		client.BatchCall{Method: "chain.submit_transaction", Params: &chainrpc.SubmitTransactionRequest{Transaction: bad, Broadcast: true}, Result: &chainrpc.SubmitTransactionResponse{}},
		// The first transaction again: already pending.
		client.BatchCall{Method: "chain.submit_transaction", Params: calls[0].Params, Result: &chainrpc.SubmitTransactionResponse{}},
		client.BatchCall{Method: "chain.get_head_info", Params: &chainrpc.GetHeadInfoRequest{}, Result: &chainrpc.GetHeadInfoResponse{}})
	if err := tn.c.CallBatch(tn.ctx(), calls); err != nil {
		t.Fatal(err)
	}
	for i, c := range calls[:20] {
		if c.Err != nil {
			t.Fatalf("call %d: %v", i, c.Err)
		}
	}
	if code, _ := chainCode(calls[20].Err); code != -200 {
		t.Fatalf("bad signature in a batch: %v", calls[20].Err)
	}
	if calls[21].Err == nil || !strings.Contains(calls[21].Err.Error(), "nonce") {
		t.Fatalf("duplicate in a batch: %v", calls[21].Err)
	}
	if calls[22].Err != nil {
		t.Fatal(calls[22].Err)
	}
	for _, id := range ids {
		tn.waitTx(id)
	}
	if got := tn.balance(to); got != 20*10 {
		t.Fatalf("recipient has %d", got)
	}
}

// The configured batch default is the largest batch keys.Verifier runs:
// above it batches are split, below it the node leaves speed unused.
func TestVerifyMaxBatchDefault(t *testing.T) {
	if got := config.Default().Verify.MaxBatch; got != keys.MaxEd25519Batch {
		t.Fatalf("verify.max_batch defaults to %d, keys.MaxEd25519Batch is %d", got, keys.MaxEd25519Batch)
	}
}

// A node without the optional indexes still produces and takes transfers,
// and answers their lookups with an error that names the setting.
func TestIndexesOffRPC(t *testing.T) {
	tn := newTestNetWith(t, 2, 100*time.Millisecond, store.Options{NoTransactionIndex: true, NoAccountHistory: true})
	to := tn.users[1].Address()
	before := tn.balance(to)
	tx := tn.transfer(0, to, 5, 1)
	if _, err := tn.submit(tx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); tn.balance(to) != before+5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the transfer was not included")
		}
	}
	var r txstorerpc.GetTransactionsByIdResponse
	err := tn.call("transaction_store.get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: [][]byte{tx.Id}}, &r)
	if err == nil || !strings.Contains(err.Error(), "store.transaction_index = false") {
		t.Fatalf("get_transactions_by_id: %v", err)
	}
	var hist acchistrpc.GetAccountHistoryResponse
	err = tn.call("account_history.get_account_history", &acchistrpc.GetAccountHistoryRequest{Address: to.Bytes(), Limit: 10}, &hist)
	if err == nil || !strings.Contains(err.Error(), "store.account_history = false") {
		t.Fatalf("get_account_history: %v", err)
	}
}

// producer.time_budget_percent sets the share of the interval a block may
// take; 0 keeps the automatic one. The share bounds the block twice: a
// count from the cost per transaction, and a deadline.
func TestBlockTimeBudget(t *testing.T) {
	tn := newTestNet(t, 1, time.Second) // one producer: 50 % by default
	tn.stop()                           // the chain loop no longer moves the cost
	n := tn.n
	n.txCost.ns = 10_000 // 10 µs per transaction
	if got := n.blockTxLimit(); got != 50_000 && got != n.chain.MaxBlockTransactions() {
		t.Fatalf("automatic budget: %d transactions", got)
	}
	n.cfg.TimeBudgetPercent = 20
	if got := n.blockTxLimit(); got != 20_000 {
		t.Fatalf("20 %% of a 1 s slot at 10 µs/tx: %d transactions, want 20,000", got)
	}
	n.cfg.TimeBudgetPercent, n.txCost.ns = 1, 100_000
	if got := n.blockTxLimit(); got != minBudgetTxs {
		t.Fatalf("a tiny budget: %d transactions, want the floor %d", got, minBudgetTxs)
	}

	// The deadline: 200 ms (20 % of 1 s), with 50 µs of store time per
	// transaction packed.
	n.cfg.TimeBudgetPercent, n.storeCost.ns = 20, 50_000
	for _, tc := range []struct {
		name     string
		elapsed  time.Duration
		included int
		stop     bool
	}{
		{"fresh, little packed", 0, 1000, false},
		{"fresh, packed more than the store time allows", 0, 4100, true},
		{"late", 210 * time.Millisecond, 300, true},
		{"time spent and store time add up", 150 * time.Millisecond, 1100, true},
		{"under the floor, never stopped", time.Second, minBudgetTxs - 1, false},
	} {
		if got := n.packingBudget(time.Now().Add(-tc.elapsed)).Stop(tc.included); got != tc.stop {
			t.Errorf("%s: Stop(%d) after %v = %v, want %v", tc.name, tc.included, tc.elapsed, got, tc.stop)
		}
	}
}

// The cost averages follow a falling cost at once and a rising one by
// halves; small blocks do not count.
func TestCostAverage(t *testing.T) {
	var c costAverage
	c.note(costSampleTxs-1, time.Second)
	if c.ns != 0 {
		t.Fatalf("a block under %d transactions counted: %v", costSampleTxs, c.ns)
	}
	for _, step := range []struct {
		txs  int
		took time.Duration
		want float64
	}{
		{1000, 10 * time.Millisecond, 10_000}, // first sample
		{1000, 30 * time.Millisecond, 20_000}, // rising: halfway
		{1000, 5 * time.Millisecond, 5_000},   // falling: at once
	} {
		c.note(step.txs, step.took)
		if c.ns != step.want {
			t.Fatalf("after %d tx in %v: %v ns/tx, want %v", step.txs, step.took, c.ns, step.want)
		}
	}
	cautious := costAverage{cautious: true}
	for _, step := range []struct {
		took time.Duration
		want float64
	}{
		{10 * time.Millisecond, 10_000},
		{30 * time.Millisecond, 30_000}, // rising: at once
		{10 * time.Millisecond, 20_000}, // falling: halfway
	} {
		cautious.note(1000, step.took)
		if cautious.ns != step.want {
			t.Fatalf("cautious, after 1000 tx in %v: %v ns/tx, want %v", step.took, cautious.ns, step.want)
		}
	}
}
