package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/proto/kjson"
)

// Defaults for the options.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxConns         = 512
	DefaultMaxResponseBytes = 64 << 20
	// DefaultIdleConnDuration is shorter than the gateway's 60 s idle
	// timeout on purpose: the client must close an idle connection before
	// the server does, or a POST sent on a connection the server is closing
	// fails, and a POST cannot be retried safely.
	DefaultIdleConnDuration = 10 * time.Second
)

// Client calls one JSON-RPC endpoint. It is safe for concurrent use.
type Client struct {
	hc      *fasthttp.HostClient
	uri     string
	timeout time.Duration
	ids     atomic.Uint64
	parsers fastjson.ParserPool
}

type options struct {
	timeout          time.Duration
	maxConns         int
	maxResponseBytes int
	idle             time.Duration
	tls              *tls.Config
}

// Option configures a Client.
type Option func(*options)

// WithTimeout bounds each call when its context has no earlier deadline.
// Default 30 s.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithMaxConns bounds the open connections to the node; calls beyond it wait
// for a free connection (within their timeout). Default 512.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// WithMaxResponseBytes bounds a response body. Default 64 MiB.
func WithMaxResponseBytes(n int) Option { return func(o *options) { o.maxResponseBytes = n } }

// WithIdleConnDuration closes connections idle for longer. Default 10 s;
// keep it below the server's idle timeout.
func WithIdleConnDuration(d time.Duration) Option { return func(o *options) { o.idle = d } }

// WithTLSConfig sets the TLS configuration for https URLs.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tls = c } }

// New returns a client for the endpoint at rawURL ("http://host:port/path";
// https is supported).
func New(rawURL string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, maxConns: DefaultMaxConns, maxResponseBytes: DefaultMaxResponseBytes, idle: DefaultIdleConnDuration}
	for _, f := range opts {
		f(&o)
	}
	if o.timeout <= 0 || o.maxConns <= 0 || o.maxResponseBytes <= 0 || o.idle <= 0 {
		return nil, errors.New("client: timeout, max conns, max response bytes and idle duration must be positive")
	}
	ep, err := ParseEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		uri:     ep.URI,
		timeout: o.timeout,
		hc: &fasthttp.HostClient{
			Addr:                ep.Addr,
			Name:                "ember-rpc-client",
			IsTLS:               ep.TLS,
			TLSConfig:           o.tls,
			MaxConns:            o.maxConns,
			MaxIdleConnDuration: o.idle,
			// Without a wait, a call finding every connection busy fails
			// at once with ErrNoFreeConns; the bench wants it to queue.
			MaxConnWaitTimeout:  o.timeout,
			MaxResponseBodySize: o.maxResponseBytes,
		},
	}
	return c, nil
}

// Endpoint is a JSON-RPC URL taken apart for a fasthttp.HostClient.
type Endpoint struct {
	URI  string // the full URL, with "/" for an empty path
	Addr string // host:port, the scheme's port when none is given
	TLS  bool
}

// ParseEndpoint checks and splits a JSON-RPC URL ("http://host:port/path"
// or https).
func ParseEndpoint(rawURL string) (Endpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Endpoint{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Endpoint{}, fmt.Errorf("URL %q must start with http:// or https://", rawURL)
	}
	if u.Host == "" {
		return Endpoint{}, fmt.Errorf("URL %q has no host", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return Endpoint{URI: u.String(), Addr: addr, TLS: u.Scheme == "https"}, nil
}

// URL returns the endpoint's URL.
func (c *Client) URL() string { return c.uri }

// Close closes the idle connections. The client stays usable.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Call calls method with params (nil for none) and decodes the result into
// result (nil to discard it). A JSON-RPC error is returned as *Error.
func (c *Client) Call(ctx context.Context, method string, params, result proto.Message) error {
	return c.call(ctx, method, params, func(v *fastjson.Value) error {
		if result == nil {
			return nil
		}
		if err := kjson.UnmarshalValue(v, result); err != nil {
			return fmt.Errorf("client: %s: decoding the result: %w", method, err)
		}
		return nil
	})
}

// CallRaw calls method with params (nil for none) and returns the result's
// JSON text as the node sent it, for output such as the CLI's --json.
func (c *Client) CallRaw(ctx context.Context, method string, params proto.Message) ([]byte, error) {
	var raw []byte
	err := c.call(ctx, method, params, func(v *fastjson.Value) error {
		raw = v.MarshalTo(nil)
		return nil
	})
	return raw, err
}

func (c *Client) call(ctx context.Context, method string, params proto.Message, decode func(*fastjson.Value) error) error {
	id := c.ids.Add(1)
	req := fasthttp.AcquireRequest()
	body := req.SwapBody(nil)
	body, err := appendRequest(body[:0], id, method, params)
	req.SwapBody(body)
	if err != nil {
		fasthttp.ReleaseRequest(req)
		return fmt.Errorf("client: %s: encoding params: %w", method, err)
	}
	return c.roundTrip(ctx, req, method, func(status int, respBody []byte) error {
		p := c.parsers.Get()
		defer c.parsers.Put(p)
		v, err := parseResponse(p, status, respBody)
		if err != nil {
			return fmt.Errorf("client: %s: %w", method, err)
		}
		if v.Type() != fastjson.TypeObject {
			return fmt.Errorf("client: %s: HTTP %d: the response is not a JSON-RPC object", method, status)
		}
		if e := errorOf(v, status); e != nil {
			return e
		}
		if got, err := v.Get("id").Uint64(); err != nil || got != id {
			return fmt.Errorf("client: %s: the response id does not match the request id %d", method, id)
		}
		rv := v.Get("result")
		if rv == nil {
			return fmt.Errorf("client: %s: the response has neither result nor error", method)
		}
		return decode(rv)
	})
}

// BatchCall is one call of a batch. Err is set by CallBatch: nil, *Error, or
// a decoding error.
type BatchCall struct {
	Method string
	Params proto.Message // nil for none
	Result proto.Message // nil to discard
	Err    error
}

// CallBatch sends calls as one JSON-RPC batch. The returned error is for the
// batch as a whole (transport failure, overload, batch refused); each call's
// own outcome is in its Err.
func (c *Client) CallBatch(ctx context.Context, calls []BatchCall) error {
	if len(calls) == 0 {
		return nil
	}
	n := uint64(len(calls))
	first := c.ids.Add(n) - n + 1
	req := fasthttp.AcquireRequest()
	body := req.SwapBody(nil)[:0]
	body = append(body, '[')
	var err error
	for i := range calls {
		if i > 0 {
			body = append(body, ',')
		}
		calls[i].Err = nil
		if body, err = appendRequest(body, first+uint64(i), calls[i].Method, calls[i].Params); err != nil {
			req.SwapBody(body)
			fasthttp.ReleaseRequest(req)
			return fmt.Errorf("client: batch call %d (%s): encoding params: %w", i, calls[i].Method, err)
		}
	}
	body = append(body, ']')
	req.SwapBody(body)
	return c.roundTrip(ctx, req, "batch", func(status int, respBody []byte) error {
		p := c.parsers.Get()
		defer c.parsers.Put(p)
		v, err := parseResponse(p, status, respBody)
		if err != nil {
			return fmt.Errorf("client: batch: %w", err)
		}
		if v.Type() == fastjson.TypeObject {
			if e := errorOf(v, status); e != nil {
				return e
			}
			return fmt.Errorf("client: batch: HTTP %d: expected an array of responses", status)
		}
		elems, err := v.Array()
		if err != nil {
			return fmt.Errorf("client: batch: HTTP %d: expected an array of responses", status)
		}
		seen := make([]bool, len(calls))
		for _, e := range elems {
			id := e.GetUint64("id")
			if id < first || id >= first+n {
				continue // null id: an invalid element; it has no call to report to
			}
			i := int(id - first)
			seen[i] = true
			if ee := errorOf(e, status); ee != nil {
				calls[i].Err = ee
				continue
			}
			rv := e.Get("result")
			switch {
			case rv == nil:
				calls[i].Err = fmt.Errorf("client: %s: the response has neither result nor error", calls[i].Method)
			case calls[i].Result != nil:
				if err := kjson.UnmarshalValue(rv, calls[i].Result); err != nil {
					calls[i].Err = fmt.Errorf("client: %s: decoding the result: %w", calls[i].Method, err)
				}
			}
		}
		for i := range calls {
			if !seen[i] {
				calls[i].Err = fmt.Errorf("client: %s: the batch response has no answer for this call", calls[i].Method)
			}
		}
		return nil
	})
}

// roundTrip sends req (which it releases) and hands the response to handle
// while the response buffer is still valid.
//
// fasthttp has no context support, so the deadline is the earlier of ctx's
// and the client timeout, and a context that can be cancelled is watched
// from a second goroutine: the call returns at once on cancellation and the
// goroutine releases the request and response when fasthttp is done with
// them. Calls with a context that cannot be cancelled skip the goroutine.
func (c *Client) roundTrip(ctx context.Context, req *fasthttp.Request, what string, handle func(status int, body []byte) error) error {
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(c.uri)
	req.Header.SetContentType("application/json")
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := ctx.Err(); err != nil {
		fasthttp.ReleaseRequest(req)
		return err
	}
	resp := fasthttp.AcquireResponse()
	var err error
	if ctx.Done() == nil {
		err = c.hc.DoDeadline(req, resp, deadline)
	} else {
		done := make(chan error, 1)
		go func() { done <- c.hc.DoDeadline(req, resp, deadline) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			go func() {
				<-done
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}()
			return fmt.Errorf("client: %s: %w", what, ctx.Err())
		}
	}
	fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err != nil {
		if errors.Is(err, fasthttp.ErrTimeout) {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return fmt.Errorf("client: %s: %w", what, ctxErr)
			}
			return fmt.Errorf("client: %s: no answer from %s by the deadline: %w", what, c.uri, context.DeadlineExceeded)
		}
		return fmt.Errorf("client: %s: %s: %w", what, c.uri, err)
	}
	return handle(resp.StatusCode(), resp.Body())
}

func appendRequest(dst []byte, id uint64, method string, params proto.Message) ([]byte, error) {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"method":`...)
	dst = kjson.AppendString(dst, method)
	if params != nil && params.ProtoReflect().IsValid() {
		dst = append(dst, `,"params":`...)
		var err error
		if dst, err = kjson.Append(dst, params); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// parseResponse parses a response body. A body that is not JSON (a proxy's
// error page, say) is reported with its HTTP status and the start of the
// body.
func parseResponse(p *fastjson.Parser, status int, body []byte) (*fastjson.Value, error) {
	v, err := p.ParseBytes(body)
	if err != nil {
		snippet := bytes.TrimSpace(body)
		if len(snippet) > 200 {
			snippet = snippet[:200]
		}
		return nil, fmt.Errorf("HTTP %d with a body that is not JSON-RPC: %q", status, snippet)
	}
	return v, nil
}

// errorOf returns the *Error in a response object, or nil.
func errorOf(v *fastjson.Value, status int) *Error {
	ev := v.Get("error")
	if ev == nil || ev.Type() == fastjson.TypeNull {
		return nil
	}
	e := &Error{Code: ev.GetInt("code"), Message: string(ev.GetStringBytes("message")), HTTPStatus: status}
	if dv := ev.Get("data"); dv != nil {
		if dv.Type() == fastjson.TypeString {
			e.Data = string(dv.GetStringBytes())
		} else if dv.Type() != fastjson.TypeNull {
			e.Data = string(dv.MarshalTo(nil)) // another server's structured data
		}
	}
	return e
}
