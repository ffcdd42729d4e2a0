package rpcgw

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestLargeBodiesNotKept: a response or request body larger than
// keptBodyBuffer is not kept for the connection's next request, while a
// small one is, so the common answer costs no allocation. A real fasthttp
// server on one keep-alive connection: the handler answers with a body of
// the size asked, and on the next request reports the capacity of the
// buffers the connection kept.
func TestLargeBodiesNotKept(t *testing.T) {
	var keptResp, keptReq int
	srv := &fasthttp.Server{MaxRequestBodySize: 16 << 20, Handler: func(ctx *fasthttp.RequestCtx) {
		keptReq = cap(ctx.Request.Body()) // this request's, in the kept buffer
		buf := ctx.Response.SwapBody(nil)
		keptResp = cap(buf)
		n, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("n")))
		buf = append(buf[:0], bytes.Repeat([]byte{'x'}, n)...)
		setResponseBody(&ctx.Response, buf, nil)
		dropLargeRequestBody(&ctx.Request)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	cl := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1}
	do := func(t *testing.T, n int, body []byte) []byte {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(fmt.Sprintf("http://%s/?n=%d", ln.Addr(), n))
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetBody(body)
		if err := cl.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), resp.Body()...)
	}
	for _, tc := range []struct {
		name string
		size int
		kept bool
	}{
		{"small", 1 << 10, true},
		{"large", keptBodyBuffer + 1, false},
		{"at the limit", keptBodyBuffer - 64<<10, true},
		{"block-sized", 10 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := do(t, tc.size, bytes.Repeat([]byte{'r'}, tc.size)); len(got) != tc.size || bytes.Count(got, []byte{'x'}) != tc.size {
				t.Fatalf("answer of %d bytes, want %d bytes of x", len(got), tc.size)
			}
			do(t, 1, []byte("{}")) // the next request on the connection sees what was kept
			if got := keptResp >= tc.size; got != tc.kept {
				t.Errorf("after a %d-byte response the connection kept a %d-byte buffer: kept = %v, want %v", tc.size, keptResp, got, tc.kept)
			}
			if got := keptReq >= tc.size; got != tc.kept {
				t.Errorf("after a %d-byte request the connection kept a %d-byte buffer: kept = %v, want %v", tc.size, keptReq, got, tc.kept)
			}
		})
	}
}

// TestLargeAndSmallAnswersOnOneConnection: answers above and below
// keptBodyBuffer, alternating on keep-alive connections, each arrive whole
// and never carry an earlier answer's bytes.
func TestLargeAndSmallAnswersOnOneConnection(t *testing.T) {
	_, url := startServer(t, Config{}, &fakeBackend{})
	for i, n := range []int{10, 600 << 10, 20, 2 << 20, 300 << 10, 5, 1 << 20} {
		arg := bytes.Repeat([]byte{byte('a' + i)}, n)
		enc := base64.URLEncoding.EncodeToString(arg)
		r := call(t, url, req(fmt.Sprint(i), "chain.read_contract", `{"args":"`+enc+`"}`))
		if r.Error != nil {
			t.Fatalf("call %d (%d bytes): %+v", i, n, r.Error)
		}
		if !strings.Contains(string(r.Result), enc) {
			t.Fatalf("call %d: the %d-byte result is not the one asked for (%d bytes of JSON)", i, n, len(r.Result))
		}
	}
}
