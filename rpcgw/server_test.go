package rpcgw

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/proto/kjson"
	koinospb "github.com/emberchain/ember/proto/koinos"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

const testAddr = "1z629tURV9KAK6Q5yqFDozwSHeWshxXQe"

// startServer serves s on a loopback port and shuts it down at cleanup.
func startServer(t testing.TB, cfg Config, b Backend) (*Server, string) {
	t.Helper()
	s, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, "http://" + ln.Addr().String() + "/"
}

var httpc = &http.Client{Timeout: 30 * time.Second}

type rpcError struct {
	Code    int     `json:"code"`
	Message string  `json:"message"`
	Data    *string `json:"data"`
}

type rpcResp struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *rpcError       `json:"error"`
}

// post sends body with no Content-Type, as koilib's fetch does.
func post(t testing.TB, url, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// checkShape fails unless b is a JSON-RPC response object with exactly one
// of result and error, and returns it decoded.
func checkShape(t testing.TB, b []byte) rpcResp {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, b)
	}
	var r rpcResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response: %v: %s", err, b)
	}
	_, hasResult := raw["result"]
	_, hasErr := raw["error"]
	_, hasID := raw["id"]
	if r.JSONRPC != "2.0" || !hasID || hasResult == hasErr {
		t.Fatalf("not a JSON-RPC 2.0 response: %s", b)
	}
	if hasErr && (r.Error == nil || r.Error.Message == "") {
		t.Fatalf("error without code and message: %s", b)
	}
	return r
}

func call(t testing.TB, url, body string) rpcResp {
	t.Helper()
	status, h, b := post(t, url, body)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", status, b)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return checkShape(t, b)
}

// asyncCall posts body from another goroutine; failures are reported with
// Errorf (FailNow may only be called from the test goroutine).
func asyncCall(t testing.TB, url, body string) <-chan rpcResp {
	ch := make(chan rpcResp, 1)
	go func() {
		defer close(ch)
		resp, err := httpc.Post(url, "", strings.NewReader(body))
		if err != nil {
			t.Errorf("async call: %v", err)
			return
		}
		defer resp.Body.Close()
		var r rpcResp
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Errorf("async call: HTTP %d: %v", resp.StatusCode, err)
			return
		}
		ch <- r
	}()
	return ch
}

func req(id, method, params string) string {
	if params == "" {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q}`, id, method)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":%s}`, id, method, params)
}

func b64addr(t testing.TB, a string) string {
	b, err := kjson.DecodeBytes(koinospb.BytesType_ADDRESS, a)
	if err != nil {
		t.Fatal(err)
	}
	return base64.URLEncoding.EncodeToString(b)
}

func TestSingleRequests(t *testing.T) {
	_, url := startServer(t, Config{}, &fakeBackend{})
	headResult := `{"head_topology":{"id":"0x1220aabb","height":"9223372036854775813","previous":"0x12200102"},` +
		`"last_irreversible_block":"9223372036854775753","head_state_merkle_root":"EiAA","head_block_time":"1713874497290"}`
	tx := `{"transaction":{"id":"0x1220abcd","header":{"rc_limit":"100000000","payer":"` + testAddr + `"},"signatures":["AAEC"]},"broadcast":true}`
	badNonceTx := `{"transaction":{"id":"0x1220abcd","header":{"payer":"` + testAddr + `"}}}`

	cases := []struct {
		name    string
		body    string
		code    int    // 0: success
		id      string // expected raw id
		result  string // exact result, if set
		message string // exact error message, if set
		data    string // substring of error data, if set
	}{
		// -32700
		{name: "truncated JSON", body: `{"jsonrpc":"2.0",`, code: CodeParseError, id: "null", message: msgParse, data: "not valid JSON"},
		{name: "empty body", body: ``, code: CodeParseError, id: "null", message: msgParse},
		{name: "garbage", body: "\x00\xff<html>", code: CodeParseError, id: "null", message: msgParse},
		// -32600
		{name: "not an object", body: `42`, code: CodeInvalidRequest, id: "null", data: "JSON-RPC request object"},
		{name: "string body", body: `"chain.get_head_info"`, code: CodeInvalidRequest, id: "null"},
		{name: "wrong version", body: `{"jsonrpc":"1.0","id":7,"method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "7", message: msgInvalid, data: `"jsonrpc" must be "2.0"`},
		{name: "version as number", body: `{"jsonrpc":2.0,"id":7,"method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "7"},
		{name: "no version", body: `{"id":7,"method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "7"},
		{name: "fractional id", body: `{"jsonrpc":"2.0","id":1.5,"method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "null", data: `"id" must be`},
		{name: "exponent id", body: `{"jsonrpc":"2.0","id":1e3,"method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "null"},
		{name: "object id", body: `{"jsonrpc":"2.0","id":{},"method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "null"},
		{name: "bool id", body: `{"jsonrpc":"2.0","id":true,"method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "null"},
		{name: "missing id", body: `{"jsonrpc":"2.0","method":"chain.get_head_info"}`, code: CodeInvalidRequest, id: "null", data: "notifications are not supported"},
		{name: "missing method", body: `{"jsonrpc":"2.0","id":1}`, code: CodeInvalidRequest, id: "1", data: `"method" must be a string`},
		{name: "numeric method", body: `{"jsonrpc":"2.0","id":1,"method":12}`, code: CodeInvalidRequest, id: "1"},
		// -32601
		{name: "method without service", body: req("2", "get_head_info", ""), code: CodeMethodNotFound, id: "2", message: msgTranslate, data: `"service.method"`},
		{name: "trailing dot", body: req("2", "chain.", ""), code: CodeMethodNotFound, id: "2"},
		{name: "unknown service", body: req("2", "wallet.get_balance", ""), code: CodeMethodNotFound, id: "2", data: `unknown service "wallet"; served: chain, block_store`},
		{name: "unknown method", body: req("2", "chain.get_balance", ""), code: CodeMethodNotFound, id: "2", data: "service chain has no method \"get_balance\"; it has: get_account_nonce"},
		{name: "qualified unknown", body: req("2", "koinos.rpc.chain.nope", ""), code: CodeMethodNotFound, id: "2"},
		{name: "refused submit_block", body: req("3", "chain.submit_block", `{}`), code: CodeMethodNotFound, id: "3", message: msgTranslate, data: "chain.submit_block is not served on this endpoint"},
		{name: "refused propose_block", body: req("3", "chain.propose_block", ""), code: CodeMethodNotFound, id: "3", data: "not served"},
		{name: "refused add_block qualified", body: req("3", "koinos.rpc.block_store.add_block", ""), code: CodeMethodNotFound, id: "3", data: "block_store.add_block is not served"},
		{name: "refused invoke_system_call", body: req("3", "chain.invoke_system_call", `{"name":"x"}`), code: CodeMethodNotFound, id: "3", data: "not served"},
		{name: "params array", body: req("4", "chain.get_account_rc", `["`+testAddr+`"]`), code: CodeMethodNotFound, id: "4", message: msgTranslate,
			data: "params must be a JSON object with the fields of koinos.rpc.chain.get_account_rc_request, not array"},
		{name: "params string", body: req("4", "chain.get_account_rc", `"x"`), code: CodeMethodNotFound, id: "4"},
		{name: "bad base58", body: req("4", "chain.get_account_nonce", `{"account":"0OIl"}`), code: CodeMethodNotFound, id: "4",
			data: `parameters could not be parsed: field "account": invalid base58 "0OIl"`},
		{name: "bad hex", body: req("4", "block_store.get_blocks_by_height", `{"head_block_id":"1220","num_blocks":1}`), code: CodeMethodNotFound, id: "4",
			data: `field "head_block_id": expected 0x-prefixed hex`},
		{name: "uint64 overflow", body: req("4", "block_store.get_blocks_by_height", `{"ancestor_start_height":"18446744073709551616"}`), code: CodeMethodNotFound, id: "4",
			data: `field "ancestor_start_height": expected an unsigned 64-bit integer`},
		{name: "nested field path", body: req("4", "chain.submit_transaction", `{"transaction":{"header":{"rc_limit":-1}}}`), code: CodeMethodNotFound, id: "4",
			data: `field "transaction.header.rc_limit"`},
		// success
		{name: "head info", body: req("1", "chain.get_head_info", ""), id: "1", result: headResult},
		{name: "qualified method", body: req("1", "koinos.rpc.chain.get_head_info", `{}`), id: "1", result: headResult},
		{name: "null params", body: req("1", "chain.get_head_info", `null`), id: "1", result: headResult},
		{name: "string id", body: req(`"a\"b\u00e9"`, "chain.get_chain_id", ""), id: `"a\"bé"`, result: `{"chain_id":"EiD-_w=="}`},
		{name: "null id", body: req("null", "chain.get_chain_id", ""), id: "null", result: `{"chain_id":"EiD-_w=="}`},
		{name: "negative id", body: req("-12", "p2p.get_gossip_status", ""), id: "-12", result: `{"enabled":true}`},
		{name: "big id", body: req("123456789012345678901234567890", "p2p.get_gossip_status", ""), id: "123456789012345678901234567890", result: `{"enabled":true}`},
		{name: "uint64 result as string", body: req("5", "chain.get_account_rc", `{"account":"`+testAddr+`"}`), id: "5", result: `{"rc":"1152921504606846983"}`},
		{name: "unknown fields ignored", body: req("5", "chain.get_account_rc", `{"account":"`+testAddr+`","bogus":[1,{"x":2}],"also":null}`), id: "5", result: `{"rc":"1152921504606846983"}`},
		{name: "extra top-level fields ignored", body: `{"jsonrpc":"2.0","id":5,"method":"p2p.get_gossip_status","meta":{"a":1}}`, id: "5", result: `{"enabled":true}`},
		{name: "address param decoded", body: req("6", "chain.get_account_nonce", `{"account":"`+testAddr+`"}`), id: "6", result: `{"nonce":"` + b64addr(t, testAddr) + `"}`},
		{name: "camelCase param", body: req("6", "chain.read_contract", `{"contractId":"`+testAddr+`","entryPoint":3,"args":"AQI="}`), id: "6", result: `{"result":"AQI=","logs":["entry point","3"]}`},
		{name: "uint64 param as string", body: req("7", "block_store.get_blocks_by_height", `{"head_block_id":"0x1220aabb","ancestor_start_height":"9223372036854775813","num_blocks":1}`),
			id: "7", result: `{"block_items":[{"block_id":"0x1220aabb","block_height":"9223372036854775813"}]}`},
		{name: "uint64 param as number", body: req("7", "block_store.get_blocks_by_height", `{"head_block_id":"0x1220aabb","ancestor_start_height":12,"num_blocks":2}`),
			id: "7", result: `{"block_items":[{"block_id":"0x1220aabb","block_height":"12"},{"block_id":"0x1220aabb","block_height":"13"}]}`},
		{name: "submit transaction", body: req("8", "chain.submit_transaction", tx), id: "8",
			result: `{"receipt":{"id":"0x1220abcd","payer":"` + testAddr + `","max_payer_rc":"1152921504606846983","rc_limit":"100000000","rc_used":"1000"}}`},
		{name: "empty result object", body: req("8", "block_store.get_blocks_by_height", `{"num_blocks":0}`), id: "8", result: `{}`},
		// -32603 from error_status
		{name: "chain error", body: req("9", "chain.submit_transaction", badNonceTx), code: CodeInternal, id: "9", message: "invalid nonce", data: nonceErr},
		{name: "error without data", body: req("9", "chain.get_fork_heads", ""), code: CodeInternal, id: "9", message: "not implemented by the fake"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, url, tc.body)
			if string(r.ID) != tc.id {
				t.Errorf("id %s, want %s", r.ID, tc.id)
			}
			if tc.code == 0 {
				if r.Error != nil {
					t.Fatalf("error %+v (data %v)", *r.Error, deref(r.Error.Data))
				}
				if tc.result != "" && string(r.Result) != tc.result {
					t.Errorf("result\n got %s\nwant %s", r.Result, tc.result)
				}
				return
			}
			if r.Error == nil {
				t.Fatalf("result %s, want error %d", r.Result, tc.code)
			}
			if r.Error.Code != tc.code {
				t.Errorf("code %d, want %d (%s: %s)", r.Error.Code, tc.code, r.Error.Message, deref(r.Error.Data))
			}
			if tc.message != "" && r.Error.Message != tc.message {
				t.Errorf("message %q, want %q", r.Error.Message, tc.message)
			}
			if tc.data != "" && !strings.Contains(deref(r.Error.Data), tc.data) {
				t.Errorf("data %q does not contain %q", deref(r.Error.Data), tc.data)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// The chain error's data must stay a JSON document that koilib can
// JSON.parse.
func TestChainErrorDataIsJSON(t *testing.T) {
	_, url := startServer(t, Config{}, &fakeBackend{})
	r := call(t, url, req("1", "chain.submit_transaction", `{"transaction":{}}`))
	var d struct {
		Code int      `json:"code"`
		Logs []string `json:"logs"`
	}
	if err := json.Unmarshal([]byte(deref(r.Error.Data)), &d); err != nil || d.Code != -201 || len(d.Logs) != 1 {
		t.Fatalf("data %q: %+v, %v", deref(r.Error.Data), d, err)
	}
}

func TestBackendFailures(t *testing.T) {
	cases := []struct {
		name string
		hook func(ctx context.Context, service string, req proto.Message) (proto.Message, error)
		data string
	}{
		{"go error", func(context.Context, string, proto.Message) (proto.Message, error) {
			return nil, errors.New("amqp: connection refused")
		}, "rpc failed, amqp: connection refused"},
		{"timeout", func(ctx context.Context, _ string, _ proto.Message) (proto.Message, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, "rpc failed, context deadline exceeded (the backend did not answer chain.get_head_info within 50ms)"},
		{"nil reply", func(context.Context, string, proto.Message) (proto.Message, error) {
			return nil, nil
		}, "returned no response"},
		{"typed nil reply", func(context.Context, string, proto.Message) (proto.Message, error) {
			return (*chainrpc.ChainResponse)(nil), nil
		}, "returned no response"},
		{"wrong envelope", func(context.Context, string, proto.Message) (proto.Message, error) {
			return &chainrpc.ChainRequest{}, nil
		}, "returned koinos.rpc.chain.chain_request, not koinos.rpc.chain.chain_response"},
		{"empty envelope", func(context.Context, string, proto.Message) (proto.Message, error) {
			return &chainrpc.ChainResponse{}, nil
		}, "empty response"},
		{"wrong member", func(context.Context, string, proto.Message) (proto.Message, error) {
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetChainId{GetChainId: &chainrpc.GetChainIdResponse{}}}, nil
		}, "answered a different method"},
		{"panic", func(context.Context, string, proto.Message) (proto.Message, error) {
			panic("boom")
		}, "the backend failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := startServer(t, Config{BackendTimeout: 50 * time.Millisecond}, &fakeBackend{hook: tc.hook})
			r := call(t, url, req("1", "chain.get_head_info", ""))
			if r.Error == nil || r.Error.Code != CodeInternal || r.Error.Message != msgInternal {
				t.Fatalf("got %s %+v", r.Result, r.Error)
			}
			if !strings.Contains(deref(r.Error.Data), tc.data) {
				t.Errorf("data %q does not contain %q", deref(r.Error.Data), tc.data)
			}
			if tc.name == "panic" && s.Stats().Panics != 1 {
				t.Errorf("panics = %d", s.Stats().Panics)
			}
		})
	}
}

// A reply whose member is set to a nil message is an empty result, not a
// panic.
func TestNilMember(t *testing.T) {
	_, url := startServer(t, Config{}, &fakeBackend{hook: func(context.Context, string, proto.Message) (proto.Message, error) {
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetHeadInfo{}}, nil
	}})
	if r := call(t, url, req("1", "chain.get_head_info", "")); r.Error != nil || string(r.Result) != "{}" {
		t.Fatalf("%+v %s", r.Error, r.Result)
	}
	_, url = startServer(t, Config{}, &fakeBackend{hook: func(context.Context, string, proto.Message) (proto.Message, error) {
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_Error{}}, nil
	}})
	if r := call(t, url, req("1", "chain.get_head_info", "")); r.Error == nil || r.Error.Message != msgInternal || r.Error.Data != nil {
		t.Fatalf("%+v", r)
	}
}

func TestBatch(t *testing.T) {
	obs := &recorder{}
	_, url := startServer(t, Config{Observer: obs}, &fakeBackend{})
	body := `[` + req("1", "chain.get_account_rc", `{"account":"`+testAddr+`"}`) + `,` +
		`17,` +
		req(`"x"`, "chain.nope", "") + `,` +
		req("4", "chain.submit_transaction", `{"transaction":{}}`) + `,` +
		`{"jsonrpc":"2.0","method":"chain.get_head_info"},` +
		req("6", "p2p.get_gossip_status", "") + `]`
	status, _, b := post(t, url, body)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	want := []struct {
		id   string
		code int
	}{{"1", 0}, {"null", CodeInvalidRequest}, {`"x"`, CodeMethodNotFound}, {"4", CodeInternal}, {"null", CodeInvalidRequest}, {"6", 0}}
	if len(elems) != len(want) {
		t.Fatalf("%d responses, want %d: %s", len(elems), len(want), b)
	}
	for i, w := range want {
		r := checkShape(t, elems[i])
		code := 0
		if r.Error != nil {
			code = r.Error.Code
		}
		if string(r.ID) != w.id || code != w.code {
			t.Errorf("element %d: id %s code %d, want id %s code %d", i, r.ID, code, w.id, w.code)
		}
	}
	got := obs.snapshot()
	wantObs := []observation{{"chain.get_account_rc", 0}, {"", CodeInvalidRequest}, {"", CodeMethodNotFound},
		{"chain.submit_transaction", CodeInternal}, {"", CodeInvalidRequest}, {"p2p.get_gossip_status", 0}}
	if fmt.Sprint(got) != fmt.Sprint(wantObs) {
		t.Errorf("observations %v, want %v", got, wantObs)
	}
}

func TestBatchLimits(t *testing.T) {
	_, url := startServer(t, Config{MaxBatch: 3}, &fakeBackend{})
	one := req("1", "p2p.get_gossip_status", "")
	cases := []struct {
		name string
		body string
		code int
		data string
	}{
		{"empty batch", `[]`, CodeInvalidRequest, "the batch is empty"},
		{"too long", "[" + strings.Repeat(one+",", 3) + one + "]", CodeTooLarge, "the batch has 4 requests; at most 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, url, tc.body)
			if r.Error == nil || r.Error.Code != tc.code || !strings.Contains(deref(r.Error.Data), tc.data) || string(r.ID) != "null" {
				t.Fatalf("got %+v", r)
			}
		})
	}
	status, _, b := post(t, url, "["+strings.Repeat(one+",", 2)+one+"]")
	var elems []rpcResp
	if status != http.StatusOK || json.Unmarshal(b, &elems) != nil || len(elems) != 3 {
		t.Fatalf("full batch: HTTP %d %s", status, b)
	}
}

func TestResponseLimit(t *testing.T) {
	_, url := startServer(t, Config{MaxResponseBytes: 600}, &fakeBackend{})
	small := req("1", "chain.read_contract", `{"args":"AQI="}`)
	big := req("2", "chain.read_contract", `{"args":"`+base64.URLEncoding.EncodeToString(make([]byte, 600))+`"}`)
	r := call(t, url, big)
	if r.Error == nil || r.Error.Code != CodeInternal || r.Error.Message != msgResponseLarge || string(r.ID) != "2" ||
		!strings.Contains(deref(r.Error.Data), "chain.read_contract") {
		t.Fatalf("big: %+v %v", r, deref(r.Error.Data))
	}
	r = call(t, url, small)
	if r.Error != nil {
		t.Fatalf("small: %+v", r.Error)
	}
	// In a batch the limit is on the whole body: later results that do not
	// fit become errors, earlier ones stand.
	mid := func(id string) string {
		return req(id, "chain.read_contract", `{"args":"`+base64.URLEncoding.EncodeToString(make([]byte, 150))+`"}`)
	}
	status, _, b := post(t, url, "["+mid("1")+","+mid("2")+","+mid("3")+"]")
	var elems []json.RawMessage
	if status != http.StatusOK || json.Unmarshal(b, &elems) != nil || len(elems) != 3 {
		t.Fatalf("batch: HTTP %d %s", status, b)
	}
	codes := []int{}
	for _, e := range elems {
		r := checkShape(t, e)
		if r.Error != nil {
			codes = append(codes, r.Error.Code)
		} else {
			codes = append(codes, 0)
		}
	}
	if fmt.Sprint(codes) != fmt.Sprint([]int{0, 0, CodeInternal}) {
		t.Errorf("codes %v (body %d bytes)", codes, len(b))
	}
}

func TestHTTPSurface(t *testing.T) {
	_, url := startServer(t, Config{MaxBodyBytes: 1024}, &fakeBackend{})

	t.Run("GET refused", func(t *testing.T) {
		resp, err := httpc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST, OPTIONS" {
			t.Fatalf("HTTP %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
		if r := checkShape(t, b); r.Error.Code != CodeInvalidRequest || !strings.Contains(deref(r.Error.Data), "must use POST") {
			t.Errorf("%+v", r.Error)
		}
	})
	t.Run("wrong path", func(t *testing.T) {
		status, _, b := post(t, url+"v1", req("1", "chain.get_head_info", ""))
		if status != http.StatusNotFound {
			t.Fatalf("HTTP %d", status)
		}
		if r := checkShape(t, b); !strings.Contains(deref(r.Error.Data), "served at POST /") {
			t.Errorf("%+v", r.Error)
		}
	})
	t.Run("query string ignored", func(t *testing.T) {
		if r := call(t, url+"?x=1", req("1", "p2p.get_gossip_status", "")); r.Error != nil {
			t.Fatalf("%+v", r.Error)
		}
	})
	t.Run("content type ignored", func(t *testing.T) {
		status, _, b := post(t, url, req("1", "p2p.get_gossip_status", ""), "Content-Type", "text/plain;charset=UTF-8")
		if r := checkShape(t, b); status != http.StatusOK || r.Error != nil {
			t.Fatalf("HTTP %d %s", status, b)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		// Announce a body over the limit and send none: the server must
		// answer from the headers alone. (Sending the body races with the
		// server closing the connection; see fasthttp issue #1348.)
		conn, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		if r := checkShape(t, b); r.Error.Code != CodeTooLarge || !strings.Contains(deref(r.Error.Data), "1024-byte limit") {
			t.Errorf("%+v", r.Error)
		}
	})
	t.Run("body at the limit", func(t *testing.T) {
		body := req("1", "p2p.get_gossip_status", "")
		body = body[:len(body)-1] + `,"pad":"` + strings.Repeat("x", 1024-len(body)-9) + `"}`
		if len(body) != 1024 {
			t.Fatalf("body is %d bytes", len(body))
		}
		if r := call(t, url, body); r.Error != nil {
			t.Fatalf("%+v", r.Error)
		}
	})
}

// rawExchange writes raw bytes on a new connection and reads one response.
func rawExchange(t *testing.T, url, raw string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestUnreadableRequests(t *testing.T) {
	_, url := startServer(t, Config{ReadTimeout: 200 * time.Millisecond}, &fakeBackend{})
	cases := []struct {
		name   string
		raw    string
		status int
		code   int
	}{
		{"malformed HTTP", "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", http.StatusBadRequest, CodeParseError},
		{"huge headers", "POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8192) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge, CodeInvalidRequest},
		{"body never sent", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", http.StatusRequestTimeout, CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, b := rawExchange(t, url, tc.raw)
			if status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", status, tc.status, b)
			}
			if r := checkShape(t, b); r.Error.Code != tc.code {
				t.Errorf("%+v", r.Error)
			}
		})
	}
}

func TestLongMethodNameClipped(t *testing.T) {
	_, url := startServer(t, Config{}, &fakeBackend{})
	r := call(t, url, req("1", "chain."+strings.Repeat("x", 10000), ""))
	if r.Error == nil || r.Error.Code != CodeMethodNotFound || len(deref(r.Error.Data)) > 1000 || !strings.Contains(deref(r.Error.Data), "...") {
		t.Fatalf("%+v", r)
	}
}

func TestCORS(t *testing.T) {
	preflight := func(t *testing.T, url, origin string) *http.Response {
		r, _ := http.NewRequest(http.MethodOptions, url, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := httpc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	body := req("1", "p2p.get_gossip_status", "")
	cases := []struct {
		name       string
		origins    []string
		origin     string
		wantOrigin string
	}{
		{"off", nil, "https://wallet.example", ""},
		{"listed origin", []string{"https://wallet.example", "http://localhost:3000"}, "http://localhost:3000", "http://localhost:3000"},
		{"unlisted origin", []string{"https://wallet.example"}, "https://evil.example", ""},
		{"any origin", []string{"*"}, "https://anyone.example", "*"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startServer(t, Config{CORSOrigins: tc.origins}, &fakeBackend{})
			resp := preflight(t, url, tc.origin)
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("preflight HTTP %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
				t.Errorf("preflight allow-origin %q, want %q", got, tc.wantOrigin)
			}
			if tc.wantOrigin != "" && (resp.Header.Get("Access-Control-Allow-Methods") != "POST, OPTIONS" ||
				!strings.EqualFold(resp.Header.Get("Access-Control-Allow-Headers"), "content-type")) {
				t.Errorf("preflight headers %v", resp.Header)
			}
			status, h, b := post(t, url, body, "Origin", tc.origin)
			if status != http.StatusOK || checkShape(t, b).Error != nil {
				t.Fatalf("HTTP %d %s", status, b)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
				t.Errorf("allow-origin %q, want %q", got, tc.wantOrigin)
			}
			if len(tc.origins) > 0 && tc.origins[0] != "*" && h.Get("Vary") != "Origin" {
				t.Errorf("Vary %q", h.Get("Vary"))
			}
		})
	}
}

// TestOverload saturates the worker pool with a backend that blocks.
func TestOverload(t *testing.T) {
	t.Run("503 when the queue is full", func(t *testing.T) {
		fb := &fakeBackend{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
		s, url := startServer(t, Config{Workers: 1, QueueSize: -1}, fb)
		first := asyncCall(t, url, req("1", "chain.get_head_info", ""))
		<-fb.entered
		status, h, b := post(t, url, req("2", "chain.get_head_info", ""))
		if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
			t.Fatalf("HTTP %d Retry-After %q", status, h.Get("Retry-After"))
		}
		r := checkShape(t, b)
		if r.Error.Code != CodeOverloaded || !strings.Contains(deref(r.Error.Data), "all 1 workers are busy") {
			t.Errorf("%+v %s", r.Error, deref(r.Error.Data))
		}
		close(fb.gate)
		if r := <-first; r.Error != nil {
			t.Errorf("first: %+v", r.Error)
		}
		if st := s.Stats(); st.Rejected != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("504 when the wait is too long", func(t *testing.T) {
		fb := &fakeBackend{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
		s, url := startServer(t, Config{Workers: 1, QueueSize: 1, QueueTimeout: 50 * time.Millisecond}, fb)
		first := asyncCall(t, url, req("1", "chain.get_head_info", ""))
		<-fb.entered
		status, _, b := post(t, url, req("2", "chain.get_head_info", ""))
		if status != http.StatusGatewayTimeout {
			t.Fatalf("HTTP %d", status)
		}
		if r := checkShape(t, b); r.Error.Code != CodeOverloaded || !strings.Contains(deref(r.Error.Data), "within 50ms") {
			t.Errorf("%+v", r.Error)
		}
		close(fb.gate)
		<-first
		if st := s.Stats(); st.QueueExpiry != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("queued requests are served in turn", func(t *testing.T) {
		fb := &fakeBackend{gate: make(chan struct{}), entered: make(chan struct{}, 16)}
		s, url := startServer(t, Config{Workers: 2, QueueSize: 8, QueueTimeout: time.Minute}, fb)
		var calls []<-chan rpcResp
		for i := range 8 {
			calls = append(calls, asyncCall(t, url, req(fmt.Sprint(i), "chain.get_head_info", "")))
		}
		<-fb.entered
		<-fb.entered
		for s.Stats().Queued != 6 {
			time.Sleep(time.Millisecond)
		}
		close(fb.gate)
		for i, ch := range calls {
			if r := <-ch; r.Error != nil || string(r.ID) != fmt.Sprint(i) {
				t.Errorf("call %d: id %s error %+v", i, r.ID, r.Error)
			}
		}
	})
}

func TestShutdown(t *testing.T) {
	t.Run("drains in-flight requests", func(t *testing.T) {
		fb := &fakeBackend{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		s, err := New(Config{}, fb)
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		serveErr := make(chan error, 1)
		go func() { serveErr <- s.Serve(ln) }()
		url := "http://" + ln.Addr().String() + "/"
		first := asyncCall(t, url, req("1", "chain.get_head_info", ""))
		<-fb.entered
		shut := make(chan error, 1)
		go func() { shut <- s.Shutdown(context.Background()) }()
		if err := <-serveErr; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			t.Error("still accepting connections after Shutdown")
		}
		close(fb.gate)
		if r := <-first; r.Error != nil {
			t.Errorf("in-flight request: %+v", r.Error)
		}
		if err := <-shut; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	})
	t.Run("deadline cancels backend calls", func(t *testing.T) {
		fb := &fakeBackend{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		s, err := New(Config{BackendTimeout: time.Minute}, fb)
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		go s.Serve(ln)
		url := "http://" + ln.Addr().String() + "/"
		first := asyncCall(t, url, req("1", "chain.get_head_info", ""))
		<-fb.entered
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v", err)
		}
		r := <-first
		if r.Error == nil || r.Error.Code != CodeInternal || !strings.Contains(deref(r.Error.Data), "shutting down") {
			t.Errorf("in-flight request: %+v", r)
		}
	})
	t.Run("before serve", func(t *testing.T) {
		s, err := New(Config{}, &fakeBackend{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	})
}

func TestListenAndServe(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"}, &fakeBackend{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe() }()
	var addr net.Addr
	for addr == nil {
		time.Sleep(time.Millisecond)
		addr = s.Addr()
	}
	if r := call(t, "http://"+addr.String()+"/", req("1", "p2p.get_gossip_status", "")); r.Error != nil {
		t.Fatal(r.Error)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"path", Config{Path: "rpc"}, "must start with /"},
		{"negative body", Config{MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"negative workers", Config{Workers: -2}, "Workers"},
		{"queue", Config{QueueSize: -2}, "QueueSize"},
		{"timeout", Config{BackendTimeout: -time.Second}, "BackendTimeout"},
		{"cors", Config{CORSOrigins: []string{"wallet.example"}}, "CORS origin"},
		{"cors path", Config{CORSOrigins: []string{"https://wallet.example/app"}}, "CORS origin"},
		{"refused", Config{RefusedMethods: []string{""}}, "refused method"},
		{"no services", Config{Services: []Service{}}, "no services"},
		{"nil envelope", Config{Services: []Service{{Name: "chain"}}}, "envelopes are required"},
		{"dotted name", Config{Services: []Service{{"a.b", (*chainrpc.ChainRequest)(nil), (*chainrpc.ChainResponse)(nil)}}}, "single non-empty word"},
		{"duplicate", Config{Services: append(KoinosServices(), KoinosServices()[0])}, "configured twice"},
		{"no oneof", Config{Services: []Service{{"chain", (*chainrpc.GetHeadInfoRequest)(nil), (*chainrpc.ChainResponse)(nil)}}}, "has no oneof"},
		{"no error member", Config{Services: []Service{{"chain", (*chainrpc.ChainRequest)(nil), (*chainrpc.ChainRequest)(nil)}}}, "no koinos.rpc.error_status member"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "rpcgw: ") {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if _, err := New(tc.cfg, &fakeBackend{}); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("nil backend accepted")
	}
	d := Config{}.EnsureDefaults()
	if d.Addr != "127.0.0.1:8080" || d.Path != "/" || d.MaxBodyBytes != 4<<20 || d.MaxBatch != 100 || d.BackendTimeout != 10*time.Second ||
		len(d.RefusedMethods) != 4 || len(d.Services) != 7 || d.CORSOrigins != nil {
		t.Fatalf("defaults %+v", d)
	}
}

// An empty non-nil RefusedMethods serves everything, including the
// internal methods (for a private listener).
func TestRefusedMethodsConfigurable(t *testing.T) {
	_, url := startServer(t, Config{RefusedMethods: []string{}}, &fakeBackend{})
	r := call(t, url, req("1", "chain.submit_block", `{}`))
	if r.Error == nil || r.Error.Message != "not implemented by the fake" {
		t.Fatalf("%+v", r)
	}
	_, url = startServer(t, Config{RefusedMethods: []string{"koinos.rpc.chain.get_"}}, &fakeBackend{})
	if r := call(t, url, req("1", "chain.get_head_info", "")); r.Error == nil || r.Error.Code != CodeMethodNotFound {
		t.Fatalf("prefix: %+v", r)
	}
	if r := call(t, url, req("1", "chain.read_contract", "")); r.Error != nil {
		t.Fatalf("read_contract: %+v", r.Error)
	}
}

type observation struct {
	method string
	code   int
}

type recorder struct {
	mu  sync.Mutex
	obs []observation
}

func (r *recorder) ObserveRequest(method string, code int, d time.Duration) {
	r.mu.Lock()
	r.obs = append(r.obs, observation{method, code})
	r.mu.Unlock()
}

func (r *recorder) snapshot() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observation(nil), r.obs...)
}

type panicky struct{}

func (panicky) ObserveRequest(string, int, time.Duration) { panic("observer bug") }

// A panic in the gateway's own path (here a faulty Observer) is answered
// 500 with a JSON-RPC body and counted; the server keeps serving.
func TestHandlerPanicRecovered(t *testing.T) {
	s, url := startServer(t, Config{Observer: panicky{}}, &fakeBackend{})
	for range 2 {
		status, _, b := post(t, url, req("1", "chain.get_head_info", ""))
		if status != http.StatusInternalServerError {
			t.Fatalf("HTTP %d", status)
		}
		if r := checkShape(t, b); r.Error.Code != CodeInternal {
			t.Fatalf("%+v", r.Error)
		}
	}
	if st := s.Stats(); st.Panics != 2 || st.Running != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestObserver(t *testing.T) {
	obs := &recorder{}
	_, url := startServer(t, Config{Observer: obs}, &fakeBackend{})
	call(t, url, req("1", "koinos.rpc.chain.get_head_info", ""))
	call(t, url, req("1", "no.such", ""))
	call(t, url, `{`)
	post(t, url+"x", "")
	want := []observation{{"chain.get_head_info", 0}, {"", CodeMethodNotFound}, {"", CodeParseError}, {"", CodeInvalidRequest}}
	if got := obs.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("observations %v, want %v", got, want)
	}
}
