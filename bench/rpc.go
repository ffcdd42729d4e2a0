package bench

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/emberchain/ember/rpcgw/client"
)

// conn posts pre-encoded JSON-RPC bodies over keep-alive connections.
// The bench does not use rpcgw/client on the hot path: that encodes each
// call's params when it is made, and the bench's bodies are encoded before
// the clock starts; the follower also wants the response body once,
// unparsed, rather than decoded into protobuf.
type conn struct {
	hc  *fasthttp.HostClient
	uri string
}

func newConn(rawURL string, maxConns int) (*conn, error) {
	ep, err := client.ParseEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bench: --rpc: %w", err)
	}
	return &conn{uri: ep.URI, hc: &fasthttp.HostClient{
		Addr:                ep.Addr,
		Name:                "ember-bench",
		IsTLS:               ep.TLS,
		MaxConns:            maxConns,
		MaxIdleConnDuration: 10 * time.Second,
		MaxConnWaitTimeout:  time.Minute,
		MaxResponseBodySize: 1 << 30,
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     64 << 10,
	}}, nil
}

// errTransport is a request that got no HTTP answer: whether the node
// acted on it is unknown.
var errTransport = errors.New("bench: no answer")

// post sends body and calls handle with the response while its buffer is
// valid. body is not copied and must not change until post returns.
func (c *conn) post(body []byte, timeout time.Duration, handle func(status int, resp []byte) error) error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(c.uri)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	if err := c.hc.DoTimeout(req, resp, timeout); err != nil {
		return fmt.Errorf("%w: %v", errTransport, err)
	}
	return handle(resp.StatusCode(), resp.Body())
}

func (c *conn) close() { c.hc.CloseIdleConnections() }

// rpcError is one JSON-RPC error answer.
type rpcError struct {
	Code    int
	Message string
	Data    string
	HTTP    int
}

func (e *rpcError) Error() string {
	s := fmt.Sprintf("JSON-RPC %d: %s", e.Code, e.Message)
	if e.Data != "" {
		s += " (" + e.Data + ")"
	}
	return s
}

// JSON-RPC codes the bench reacts to.
const (
	codeOverloaded = -32005 // the gateway's queue is full or timed out: retry
	// chainCodePendingLimit is Koinos's pending_transaction_limit_exceeded
	// (-206): the mempool or the account's queue is full: retry.
	chainCodePendingLimit = -206
)

// retryable reports whether the node refused for load rather than for the
// transaction itself, so the same transaction may be sent again without
// breaking its account's nonce order.
func (e *rpcError) retryable() bool {
	if e.Code == codeOverloaded || e.HTTP == 503 || e.HTTP == 504 {
		return true
	}
	if strings.Contains(e.Data, fmt.Sprintf(`"code":%d`, chainCodePendingLimit)) {
		return true
	}
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "overloaded") || strings.Contains(m, "retry later")
}

// errorOf returns the error in a JSON-RPC response object, or nil.
func errorOf(v *fastjson.Value, status int) *rpcError {
	ev := v.Get("error")
	if ev == nil || ev.Type() == fastjson.TypeNull {
		return nil
	}
	e := &rpcError{Code: ev.GetInt("code"), Message: string(ev.GetStringBytes("message")), HTTP: status}
	if dv := ev.Get("data"); dv != nil {
		if dv.Type() == fastjson.TypeString {
			e.Data = string(dv.GetStringBytes())
		} else if dv.Type() != fastjson.TypeNull {
			e.Data = string(dv.MarshalTo(nil))
		}
	}
	return e
}

// call posts one request and hands its result value, valid only inside
// fn, to fn; n, if set, counts the response bytes.
func (c *conn) call(p *fastjson.Parser, body []byte, timeout time.Duration, n *int64, fn func(result *fastjson.Value) error) error {
	return c.post(body, timeout, func(status int, resp []byte) error {
		if n != nil {
			*n += int64(len(resp))
		}
		return parseResult(p, status, resp, fn)
	})
}

// parseResult parses a JSON-RPC answer and hands its result to fn.
func parseResult(p *fastjson.Parser, status int, resp []byte, fn func(result *fastjson.Value) error) error {
	v, err := p.ParseBytes(resp)
	if err != nil {
		return fmt.Errorf("bench: HTTP %d with a body that is not JSON: %.200q", status, resp)
	}
	if e := errorOf(v, status); e != nil {
		return e
	}
	r := v.Get("result")
	if r == nil {
		return fmt.Errorf("bench: HTTP %d: the answer has neither result nor error", status)
	}
	return fn(r)
}
