package rpcgw

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serveInProcess runs the handler on body without a network, the way
// fasthttp would after reading the request.
func serveInProcess(s *Server, ctx *fasthttp.RequestCtx, body []byte) {
	var r fasthttp.Request
	r.Header.SetMethod(fasthttp.MethodPost)
	r.SetRequestURI("/")
	r.SetBody(body)
	ctx.Init(&r, nil, nil)
	s.handle(ctx)
}

var fuzzSeeds = []string{
	``,
	`{`,
	`null`,
	`[]`,
	`[1,2]`,
	`[[]]`,
	`"x"`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.get_head_info"}`,
	`{"jsonrpc":"2.0","id":"a\"\u0000\ud800","method":"koinos.rpc.chain.get_head_info","params":null}`,
	`{"jsonrpc":"2.0","id":1.5,"method":"chain.get_head_info"}`,
	`{"jsonrpc":"2.0","id":1.2.3,"method":"chain.get_head_info"}`,
	`{"jsonrpc":"2.0","id":-0,"method":"chain.get_head_info"}`,
	`{"jsonrpc":"2.0","id":"\x","method":"chain.get_head_info"}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.get_account_rc","params":{"account":"1z629tURV9KAK6Q5yqFDozwSHeWshxXQe"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.get_account_nonce","params":{"account":"0OIl"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.read_contract","params":{"contract_id":"1z629tURV9KAK6Q5yqFDozwSHeWshxXQe","entry_point":1e3,"args":"AQI"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.submit_transaction","params":{"transaction":{"id":"0x1220","header":{"rc_limit":"1","payer":"1z629tURV9KAK6Q5yqFDozwSHeWshxXQe"},"operations":[{"call_contract":{"args":"AA=="}}],"signatures":["AA"]}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.submit_transaction","params":{"transaction":{}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"block_store.get_blocks_by_height","params":{"head_block_id":"0x1220aabb","ancestor_start_height":"18446744073709551615","num_blocks":3}}`,
	`{"jsonrpc":"2.0","id":1,"method":"block_store.get_blocks_by_height","params":{"num_blocks":4294967295}}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.submit_block","params":{}}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.invoke_system_call","params":{"id":"1"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"p2p.get_gossip_status","params":[1]}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.read_contract","params":{"args":{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"chain.get_head_info"},{"jsonrpc":"2.0","id":2,"method":"nope"},3]`,
	`{"jsonrpc":"2.0","id":NaN,"method":"chain.get_head_info"}`,
	`{"jsonrpc":"2.0","id":1,"method":"chain.get_account_rc","params":{"account":"` + strings.Repeat("z", 200) + `"}}`,
}

var (
	fuzzOnce   sync.Once
	fuzzServer *Server
)

// fuzzTarget is one server for all inputs: building one per input would
// measure New, not the request path.
func fuzzTarget(t testing.TB) *Server {
	fuzzOnce.Do(func() {
		var err error
		fuzzServer, err = New(Config{
			MaxBatch:         20,
			MaxResponseBytes: 1 << 16,
			BackendTimeout:   time.Second,
			Logger:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		}, &fakeBackend{})
		if err != nil {
			panic(err)
		}
	})
	return fuzzServer
}

// FuzzServe: any bytes as a request body give a syntactically valid
// JSON-RPC response (an object, or an array for a batch), never a panic,
// never a hang.
func FuzzServe(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s := fuzzTarget(t)
		panics := s.Stats().Panics
		var ctx fasthttp.RequestCtx
		done := make(chan struct{})
		go func() {
			defer close(done)
			serveInProcess(s, &ctx, body)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer within 10s for %q", body)
		}
		if s.Stats().Panics != panics {
			t.Fatalf("panic serving %q", body)
		}
		if st := ctx.Response.StatusCode(); st != fasthttp.StatusOK {
			t.Fatalf("HTTP %d for %q", st, body)
		}
		checkAnyResponse(t, body, ctx.Response.Body())
	})
}

func TestFuzzSeeds(t *testing.T) {
	s := fuzzTarget(t)
	for _, seed := range fuzzSeeds {
		var ctx fasthttp.RequestCtx
		serveInProcess(s, &ctx, []byte(seed))
		checkAnyResponse(t, []byte(seed), ctx.Response.Body())
	}
	if p := s.Stats().Panics; p != 0 {
		t.Fatalf("%d panics", p)
	}
}

// checkAnyResponse checks the response to body: valid JSON; a batch answer
// has one element per request when the body is a (strict JSON) array the
// gateway accepts; everything else is one response object.
func checkAnyResponse(t testing.TB, body, resp []byte) {
	t.Helper()
	if !json.Valid(resp) {
		t.Fatalf("invalid JSON %q for %q", resp, body)
	}
	trimmed := bytes.TrimSpace(resp)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(resp, &elems); err != nil || len(elems) == 0 {
			t.Fatalf("bad batch response %q for %q", resp, body)
		}
		var in []json.RawMessage
		if json.Unmarshal(body, &in) == nil && len(in) != len(elems) {
			t.Fatalf("%d responses to %d requests: %q", len(elems), len(in), resp)
		}
		for _, e := range elems {
			checkShape(t, e)
		}
		return
	}
	checkShape(t, resp)
}
