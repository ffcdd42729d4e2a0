package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/proto/kjson"
	koinospb "github.com/emberchain/ember/proto/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
	rpcpb "github.com/emberchain/ember/proto/koinos/rpc"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	p2prpc "github.com/emberchain/ember/proto/koinos/rpc/p2p"
	"github.com/emberchain/ember/rpcgw"
	"github.com/emberchain/ember/rpcgw/client"
)

const (
	testAddr  = "1z629tURV9KAK6Q5yqFDozwSHeWshxXQe"
	bigHeight = uint64(1)<<63 + 5
	bigRC     = uint64(1)<<60 + 7
	nonceData = `{"code":-201,"logs":["nonce 7 is not the next nonce (expected 3)"]}`
)

// backend answers a few chain methods; a call blocks while gate is open.
type backend struct {
	gate    chan struct{}
	entered chan struct{}
}

func (b *backend) Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
	if b.entered != nil {
		b.entered <- struct{}{}
	}
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if _, ok := req.(*p2prpc.P2PRequest); ok {
		return &p2prpc.P2PResponse{Response: &p2prpc.P2PResponse_GetGossipStatus{GetGossipStatus: &p2prpc.GetGossipStatusResponse{Enabled: true}}}, nil
	}
	r, ok := req.(*chainrpc.ChainRequest)
	if !ok {
		return nil, errors.New("not served")
	}
	switch x := r.Request.(type) {
	case *chainrpc.ChainRequest_GetHeadInfo:
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoResponse{
			HeadTopology: &koinospb.BlockTopology{Id: []byte{0x12, 0x20, 1}, Height: bigHeight}, HeadBlockTime: 1713874497290,
		}}}, nil
	case *chainrpc.ChainRequest_GetAccountRc:
		if len(x.GetAccountRc.Account) == 0 {
			return nil, errors.New("no account")
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetAccountRc{GetAccountRc: &chainrpc.GetAccountRcResponse{Rc: bigRC}}}, nil
	case *chainrpc.ChainRequest_SubmitTransaction:
		tx := x.SubmitTransaction.Transaction
		if tx.GetHeader().GetRcLimit() == 0 {
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_Error{Error: &rpcpb.ErrorStatus{Message: "invalid nonce", Data: nonceData}}}, nil
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_SubmitTransaction{SubmitTransaction: &chainrpc.SubmitTransactionResponse{
			Receipt: &protocol.TransactionReceipt{Id: tx.Id, Payer: tx.Header.Payer, RcLimit: tx.Header.RcLimit, RcUsed: 1000},
		}}}, nil
	}
	return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_Error{Error: &rpcpb.ErrorStatus{Message: "not implemented"}}}, nil
}

func serve(t testing.TB, cfg rpcgw.Config, b rpcgw.Backend) string {
	t.Helper()
	s, err := rpcgw.New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String() + "/"
}

func newClient(t testing.TB, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func addr(t testing.TB) []byte {
	a, err := kjson.DecodeBytes(koinospb.BytesType_ADDRESS, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRoundTrip(t *testing.T) {
	c := newClient(t, serve(t, rpcgw.Config{}, &backend{}))
	ctx := context.Background()

	var head chainrpc.GetHeadInfoResponse
	if err := c.Call(ctx, "chain.get_head_info", nil, &head); err != nil {
		t.Fatal(err)
	}
	if head.HeadTopology.GetHeight() != bigHeight || head.HeadBlockTime != 1713874497290 {
		t.Fatalf("head %v", &head)
	}

	var rc chainrpc.GetAccountRcResponse
	if err := c.Call(ctx, "koinos.rpc.chain.get_account_rc", &chainrpc.GetAccountRcRequest{Account: addr(t)}, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Rc != bigRC {
		t.Fatalf("rc %d", rc.Rc)
	}

	tx := &protocol.Transaction{Id: []byte{0x12, 0x20, 9}, Header: &protocol.TransactionHeader{RcLimit: 5, Payer: addr(t)}}
	var sub chainrpc.SubmitTransactionResponse
	if err := c.Call(ctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &sub); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(sub.Receipt, &protocol.TransactionReceipt{Id: tx.Id, Payer: addr(t), RcLimit: 5, RcUsed: 1000}) {
		t.Fatalf("receipt %v", sub.Receipt)
	}

	// A nil result discards it.
	if err := c.Call(ctx, "chain.get_head_info", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCallRaw(t *testing.T) {
	c := newClient(t, serve(t, rpcgw.Config{}, &backend{}))
	raw, err := c.CallRaw(context.Background(), "chain.get_account_rc", &chainrpc.GetAccountRcRequest{Account: addr(t)})
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"rc":"1152921504606846983"}` {
		t.Fatalf("raw %s", raw)
	}
}

func TestErrors(t *testing.T) {
	c := newClient(t, serve(t, rpcgw.Config{}, &backend{}))
	ctx := context.Background()
	cases := []struct {
		name    string
		method  string
		params  proto.Message
		code    int
		message string
		chain   chainpb.ErrorCode
		logs    int
	}{
		{"chain error", "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: &protocol.Transaction{}}, client.CodeInternal, "invalid nonce", chainpb.ErrorCode_invalid_nonce, 1},
		{"unknown method", "chain.get_balance", nil, client.CodeMethodNotFound, "Unable to translate request", 0, 0},
		{"refused", "chain.submit_block", nil, client.CodeMethodNotFound, "Unable to translate request", 0, 0},
		{"backend failure", "chain.get_account_rc", &chainrpc.GetAccountRcRequest{}, client.CodeInternal, "An internal server error has occurred", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctx, tc.method, tc.params, nil)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *client.Error", err)
			}
			if !strings.HasPrefix(e.Error(), fmt.Sprintf("rpc error %d: %s", tc.code, tc.message)) {
				t.Errorf("Error() = %q", e.Error())
			}
			if e.Code != tc.code || e.Message != tc.message || e.HTTPStatus != http.StatusOK || e.Temporary() {
				t.Fatalf("%+v", e)
			}
			code, ok := e.ChainCode()
			if ok != (tc.chain != 0) || code != tc.chain || len(e.ChainLogs()) != tc.logs {
				t.Fatalf("chain code %v %v logs %q (data %q)", code, ok, e.ChainLogs(), e.Data)
			}
		})
	}
}

func TestCallBatch(t *testing.T) {
	c := newClient(t, serve(t, rpcgw.Config{MaxBatch: 4}, &backend{}))
	var head chainrpc.GetHeadInfoResponse
	var rc chainrpc.GetAccountRcResponse
	calls := []client.BatchCall{
		{Method: "chain.get_head_info", Result: &head},
		{Method: "chain.nope"},
		{Method: "chain.get_account_rc", Params: &chainrpc.GetAccountRcRequest{Account: addr(t)}, Result: &rc},
		{Method: "chain.submit_transaction", Params: &chainrpc.SubmitTransactionRequest{Transaction: &protocol.Transaction{}}},
	}
	if err := c.CallBatch(context.Background(), calls); err != nil {
		t.Fatal(err)
	}
	if calls[0].Err != nil || head.HeadTopology.GetHeight() != bigHeight {
		t.Errorf("call 0: %v %v", calls[0].Err, &head)
	}
	var e *client.Error
	if !errors.As(calls[1].Err, &e) || e.Code != client.CodeMethodNotFound {
		t.Errorf("call 1: %v", calls[1].Err)
	}
	if calls[2].Err != nil || rc.Rc != bigRC {
		t.Errorf("call 2: %v %d", calls[2].Err, rc.Rc)
	}
	if !errors.As(calls[3].Err, &e) {
		t.Errorf("call 3: %v", calls[3].Err)
	} else if code, _ := e.ChainCode(); code != chainpb.ErrorCode_invalid_nonce {
		t.Errorf("call 3: %v", e)
	}

	// The whole batch refused: the error is CallBatch's.
	err := c.CallBatch(context.Background(), append(calls, client.BatchCall{Method: "chain.get_head_info"}))
	if !errors.As(err, &e) || e.Code != client.CodeTooLarge {
		t.Fatalf("oversized batch: %v", err)
	}
	if err := c.CallBatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestOverloadIsTemporary(t *testing.T) {
	b := &backend{gate: make(chan struct{}), entered: make(chan struct{}, 2)}
	c := newClient(t, serve(t, rpcgw.Config{Workers: 1, QueueSize: -1}, b))
	done := make(chan error, 1)
	go func() { done <- c.Call(context.Background(), "chain.get_head_info", nil, nil) }()
	<-b.entered
	err := c.Call(context.Background(), "chain.get_head_info", nil, nil)
	var e *client.Error
	if !errors.As(err, &e) || !e.Temporary() || e.HTTPStatus != http.StatusServiceUnavailable || e.Code != client.CodeOverloaded {
		t.Fatalf("%v", err)
	}
	close(b.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestContext(t *testing.T) {
	b := &backend{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	defer close(b.gate)
	c := newClient(t, serve(t, rpcgw.Config{}, b))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Call(ctx, "chain.get_head_info", nil, nil) }()
	<-b.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Call(ctx, "chain.get_head_info", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}

	short := newClient(t, c.URL(), client.WithTimeout(50*time.Millisecond))
	if err := short.Call(context.Background(), "chain.get_head_info", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client timeout: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := c.Call(ctx, "chain.get_head_info", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
}

func TestNotJSONRPC(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/html":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
		case "/wrongid":
			w.Write([]byte(`{"jsonrpc":"2.0","id":999999,"result":{}}`))
		default:
			w.Write([]byte(`{"jsonrpc":"2.0","id":1}`))
		}
	}))
	defer hs.Close()
	for path, want := range map[string]string{
		"/html":    "HTTP 502 with a body that is not JSON-RPC",
		"/wrongid": "does not match",
		"/":        "neither result nor error",
	} {
		c := newClient(t, hs.URL+path)
		err := c.Call(context.Background(), "chain.get_head_info", nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x/", "http://", "http://%zz"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := client.New("http://x/", client.WithMaxConns(0)); err == nil {
		t.Error("zero max conns accepted")
	}
	c, err := client.New("https://node.example")
	if err != nil || c.URL() != "https://node.example/" {
		t.Fatalf("%v %v", c, err)
	}
}

// TestConcurrent runs many goroutines through one client (run with -race).
func TestConcurrent(t *testing.T) {
	c := newClient(t, serve(t, rpcgw.Config{}, &backend{}), client.WithMaxConns(8))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for range 100 {
				var rc chainrpc.GetAccountRcResponse
				if err := c.Call(context.Background(), "chain.get_account_rc", &chainrpc.GetAccountRcRequest{Account: addr(t)}, &rc); err != nil || rc.Rc != bigRC {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkRoundTrip is a loopback call through client and gateway: the
// cost per call a bench client and the gateway pay together, both sharing
// the machine's cores.
func BenchmarkRoundTrip(b *testing.B) {
	c := newClient(b, serve(b, rpcgw.Config{}, &backend{}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var head chainrpc.GetHeadInfoResponse
		for pb.Next() {
			if err := c.Call(context.Background(), "chain.get_head_info", nil, &head); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want client.Endpoint
		bad  bool
	}{
		{in: "http://127.0.0.1:8080/", want: client.Endpoint{URI: "http://127.0.0.1:8080/", Addr: "127.0.0.1:8080"}},
		{in: "http://localhost", want: client.Endpoint{URI: "http://localhost/", Addr: "localhost:80"}},
		{in: "https://node.example/rpc", want: client.Endpoint{URI: "https://node.example/rpc", Addr: "node.example:443", TLS: true}},
		{in: "http://[::1]:9000", want: client.Endpoint{URI: "http://[::1]:9000/", Addr: "[::1]:9000"}},
		{in: "127.0.0.1:8080", bad: true},
		{in: "ftp://host/", bad: true},
		{in: "http://", bad: true},
		{in: "http://%zz", bad: true},
		{in: "", bad: true},
	} {
		got, err := client.ParseEndpoint(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseEndpoint(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
