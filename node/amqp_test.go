package node

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	emberrpc "github.com/emberchain/ember/proto/ember/rpc"
	acchistrpc "github.com/emberchain/ember/proto/koinos/rpc/account_history"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	contractmetarpc "github.com/emberchain/ember/proto/koinos/rpc/contract_meta_store"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
	p2prpc "github.com/emberchain/ember/proto/koinos/rpc/p2p"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	"github.com/emberchain/ember/rpcgw"
	"github.com/emberchain/ember/rpcgw/client"
)

// busNames returns broker names for one test, cleaned up at its end.
func busNames(t testing.TB, url string) amqp.Names {
	n := amqp.TestNames(amqptest.Prefix(t))
	var queues []string
	for _, s := range Services() {
		queues = append(queues, n.QueuePrefix+s.Name)
	}
	amqptest.Cleanup(t, url, queues, []string{n.RPCExchange, n.EventExchange})
	return n
}

// newBusNet starts a node that also serves its services on the bus.
func newBusNet(t *testing.T, url string, names amqp.Names, users int) *testNet {
	t.Helper()
	tn := newTestNet(t, users, 200*time.Millisecond)
	tn.stop()
	tn.amqp = &AMQPConfig{ServerConfig: amqp.ServerConfig{URL: url, Names: names, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}}
	tn.start()
	waitUntil(t, "the node to consume from the bus", func() bool { return tn.n.AMQPStats().Connected })
	return tn
}

// gateway is a remote JSON-RPC gateway: rpcgw.Server over the AMQP client,
// as `ember rpcgw` runs it.
type gateway struct {
	c   *amqp.Client
	url string
	rpc *client.Client
}

func startGateway(t testing.TB, url string, names amqp.Names) *gateway {
	t.Helper()
	c, err := amqp.NewClient(amqp.ClientConfig{URL: url, Services: Services(), Names: names, ProbeInterval: 50 * time.Millisecond,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	s, err := rpcgw.New(rpcgw.Config{Services: Services()}, c)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	g := &gateway{c: c, url: "http://" + ln.Addr().String() + "/"}
	if g.rpc, err = client.New(g.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.rpc.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		s.Shutdown(sctx)
		<-served
		cancel()
		<-ran
	})
	return g
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	amqptest.WaitFor(t, what, cond)
}

// waitReady waits until the gateway answers through the bus.
func (g *gateway) waitReady(t testing.TB) {
	t.Helper()
	waitUntil(t, "the gateway to answer", func() bool {
		return g.call(t, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &chainrpc.GetHeadInfoResponse{}) == nil
	})
}

func (g *gateway) call(t testing.TB, method string, params, result proto.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return g.rpc.Call(ctx, method, params, result)
}

// Every service answers through a remote gateway over the bus exactly as
// the node's own JSON-RPC answers, submit_transaction included.
func TestAMQPGatewayEveryService(t *testing.T) {
	url := amqptest.URL(t)
	names := busNames(t, url)
	tn := newBusNet(t, url, names, 2)
	g := startGateway(t, url, names)
	g.waitReady(t)

	to := keys.Ed25519FromSeed(seed("bus-recipient")).Address()
	tx := tn.transfer(1, to, 777, 1)
	var sub chainrpc.SubmitTransactionResponse
	if err := g.call(t, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &sub); err != nil {
		t.Fatal(err)
	}
	if sub.GetReceipt().GetRcUsed() == 0 {
		t.Fatalf("receipt %v", &sub)
	}
	tn.waitTx(tx.Id)

	head := tn.head().GetHeadTopology()
	calls := []struct {
		method         string
		params, result proto.Message
	}{
		{"chain.get_chain_id", &chainrpc.GetChainIdRequest{}, &chainrpc.GetChainIdResponse{}},
		{"chain.get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: tn.users[1].Address().Bytes()}, &chainrpc.GetAccountNonceResponse{}},
		{"chain.get_resource_limits", &chainrpc.GetResourceLimitsRequest{}, &chainrpc.GetResourceLimitsResponse{}},
		{"block_store.get_highest_block", &blockstorerpc.GetHighestBlockRequest{}, &blockstorerpc.GetHighestBlockResponse{}},
		{"block_store.get_blocks_by_height", &blockstorerpc.GetBlocksByHeightRequest{HeadBlockId: head.Id, AncestorStartHeight: 1, NumBlocks: 2, ReturnBlock: true}, &blockstorerpc.GetBlocksByHeightResponse{}},
		{"mempool.get_pending_transactions", &mempoolrpc.GetPendingTransactionsRequest{Limit: 10}, &mempoolrpc.GetPendingTransactionsResponse{}},
		{"transaction_store.get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: [][]byte{tx.Id}}, &txstorerpc.GetTransactionsByIdResponse{}},
		{"account_history.get_account_history", &acchistrpc.GetAccountHistoryRequest{Address: tn.users[1].Address().Bytes(), Limit: 10}, &acchistrpc.GetAccountHistoryResponse{}},
		{"contract_meta_store.get_contract_meta", &contractmetarpc.GetContractMetaRequest{ContractId: tn.g.TokenID().Bytes()}, &contractmetarpc.GetContractMetaResponse{}},
		{"p2p.get_gossip_status", &p2prpc.GetGossipStatusRequest{}, &p2prpc.GetGossipStatusResponse{}},
		{"ember.get_chain_info", &emberrpc.GetChainInfoRequest{}, &emberrpc.GetChainInfoResponse{}},
	}
	for _, c := range calls {
		direct := c.result.ProtoReflect().New().Interface()
		if err := tn.call(c.method, c.params, direct); err != nil {
			t.Fatalf("%s direct: %v", c.method, err)
		}
		if err := g.call(t, c.method, c.params, c.result); err != nil {
			t.Fatalf("%s through the bus: %v", c.method, err)
		}
		if c.method != "block_store.get_highest_block" && !proto.Equal(direct, c.result) {
			t.Errorf("%s: direct %v, through the bus %v", c.method, direct, c.result)
		}
	}
	// Errors come back as the direct path gives them.
	bad := tn.transfer(1, to, 1, 1) // nonce already used
	errDirect := tn.call("chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: bad}, &chainrpc.SubmitTransactionResponse{})
	errBus := g.call(t, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: bad}, &chainrpc.SubmitTransactionResponse{})
	if errDirect == nil || errBus == nil || errDirect.Error() != errBus.Error() {
		t.Fatalf("direct %v, through the bus %v", errDirect, errBus)
	}
	if st := tn.n.AMQPStats().Services["chain"]; st.Served < 5 || st.Rejected != 0 {
		t.Fatalf("chain counters %+v", st)
	}
}

// Two nodes consume the same queues; both serve.
func TestAMQPTwoNodesShareQueues(t *testing.T) {
	url := amqptest.URL(t)
	names := busNames(t, url)
	a := newBusNet(t, url, names, 0)
	b := newBusNet(t, url, names, 0)
	g := startGateway(t, url, names)
	waitUntil(t, "both nodes to answer", func() bool {
		var r chainrpc.GetHeadInfoResponse
		_ = g.call(t, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r)
		return a.n.AMQPStats().Services["chain"].Served > 0 && b.n.AMQPStats().Services["chain"].Served > 0
	})
}

// A gateway started while no node serves answers 503 at once, and serves
// once a node comes up, without a restart.
func TestAMQPGatewayWaitsForNode(t *testing.T) {
	url := amqptest.URL(t)
	names := busNames(t, url)
	g := startGateway(t, url, names)
	waitUntil(t, "the gateway to connect", func() bool { return g.c.Stats().Connected })
	body := `{"jsonrpc":"2.0","id":1,"method":"chain.get_head_info"}`
	post := func() (int, string) {
		resp, err := http.Post(g.url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	start := time.Now()
	if code, b := post(); code != http.StatusServiceUnavailable || !strings.Contains(b, "no node consumes") || time.Since(start) > time.Second {
		t.Fatalf("HTTP %d after %v: %s", code, time.Since(start), b)
	}
	newBusNet(t, url, names, 0)
	waitUntil(t, "the gateway to serve", func() bool {
		code, b := post()
		return code == http.StatusOK && strings.Contains(b, `"head_topology"`)
	})
}

// koilib runs a wallet session — a transfer included — through a remote
// gateway.
func TestAMQPKoilibThroughGateway(t *testing.T) {
	requireKoilib(t)
	url := amqptest.URL(t)
	names := busNames(t, url)
	tn := newBusNet(t, url, names, 2)
	g := startGateway(t, url, names)
	g.waitReady(t)
	to := keys.Ed25519FromSeed(seed("koilib-bus-recipient")).Address()
	out := runKoilib(t, "wallet.js", g.url, tn.users[0].String(), tn.g.TokenID().String(), to.String())
	var got struct {
		ToAfter    string `json:"toAfter"`
		BlockHasTx bool   `json:"blockHasTx"`
		NonceAfter int    `json:"nonceAfter"`
		BadError   string `json:"badError"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("koilib output %q: %v", out, err)
	}
	if got.ToAfter != "12345" || !got.BlockHasTx || got.NonceAfter != 1 || !strings.Contains(got.BadError, "-201") {
		t.Fatalf("koilib through the gateway: %s", out)
	}
	if b := tn.balance(to); b != 12345 {
		t.Fatalf("node says recipient has %d", b)
	}
}

// A Node.js program calls koinos.rpc.chain with amqplib, building and
// reading the protobuf bytes by hand (testdata/koilib/amqp_head.js).
func TestAMQPAmqplibHeadInfo(t *testing.T) {
	requireKoilib(t)
	url := amqptest.URL(t)
	names := busNames(t, url)
	tn := newBusNet(t, url, names, 0)
	waitUntil(t, "a block", func() bool { return tn.head().GetHeadTopology().GetHeight() >= 2 })
	out := runKoilib(t, "amqp_head.js", url, names.RPCExchange, names.QueuePrefix+"chain")
	var got struct {
		Height      string `json:"height"`
		ContentType string `json:"contentType"`
		Correlated  bool   `json:"correlated"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("amqplib output %q: %v", out, err)
	}
	now := tn.head().GetHeadTopology().GetHeight()
	if h, err := parseUint(got.Height); err != nil || h < 2 || h > now || got.ContentType != amqp.ContentType || !got.Correlated {
		t.Fatalf("amqplib saw %s (head now %d)", out, now)
	}
}

func parseUint(s string) (uint64, error) {
	var v uint64
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

// A producer and a follower of one chain serve the same queues; a remote
// gateway keeps answering, without an error, while each of them is
// restarted in turn.
func TestAMQPGatewayThroughNodeRestarts(t *testing.T) {
	url := amqptest.URL(t)
	names := busNames(t, url)
	c := newCluster(t, 1, 1, 200*time.Millisecond)
	c.amqp = &AMQPConfig{ServerConfig: amqp.ServerConfig{URL: url, Names: names, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}}
	prod := c.add(0)
	fol := c.add(-1)
	g := startGateway(t, url, names)
	served := func(m *member) uint64 { return m.n.AMQPStats().Services["chain"].Served }
	waitUntil(t, "both nodes to serve", func() bool {
		var r chainrpc.GetHeadInfoResponse
		_ = g.call(t, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r)
		return served(prod) > 0 && served(fol) > 0
	})

	var calls, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var r chainrpc.GetHeadInfoResponse
				if err := g.call(t, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				calls.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	for _, m := range []*member{fol, prod} {
		before := calls.Load()
		m.stop()
		waitUntil(t, "calls while a node is down", func() bool { return calls.Load() > before+50 })
		m.start()
		waitUntil(t, "the restarted node to serve", func() bool { return served(m) > 0 })
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed through the restarts; first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
	t.Logf("%d calls through two node restarts, none failed", calls.Load())
}
