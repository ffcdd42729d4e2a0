package rpcgw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/emberchain/ember/proto/kjson"
)

var (
	strJSON         = []byte("application/json")
	strAllow        = "POST, OPTIONS"
	strOrigin       = []byte("Origin")
	headerMaxAge    = "600"
	corsAllowHeader = "Content-Type"
)

// handle is the fasthttp handler: routing, CORS, admission, then the body.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	defer s.recoverHandler(ctx)
	if s.closing.Load() {
		// After Shutdown, every response closes its connection, including
		// on connections fasthttp's drain no longer watches.
		ctx.SetConnectionClose()
	}
	if !bytes.Equal(ctx.Path(), s.path) {
		s.writeHTTPError(ctx, fasthttp.StatusNotFound, CodeInvalidRequest, msgInvalid,
			"JSON-RPC is served at POST "+s.cfg.Path)
		return
	}
	switch {
	case ctx.IsPost():
	case ctx.IsOptions():
		s.preflight(ctx)
		return
	default:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, strAllow)
		s.writeHTTPError(ctx, fasthttp.StatusMethodNotAllowed, CodeInvalidRequest, msgInvalid,
			"JSON-RPC requests must use POST, not "+clip(string(ctx.Method())))
		return
	}
	s.applyCORS(ctx)

	switch s.adm.acquire(s.base.Done()) {
	case admitted:
	case rejectedFull:
		s.stats.rejected.Add(1)
		s.warn("rpcgw: overloaded: workers and queue full", "workers", s.cfg.Workers, "queue", s.cfg.QueueSize)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		s.writeHTTPError(ctx, fasthttp.StatusServiceUnavailable, CodeOverloaded, msgOverloaded, s.dataFull)
		return
	case rejectedTimeout:
		s.stats.queueExpiry.Add(1)
		s.warn("rpcgw: overloaded: request waited past the queue timeout", "timeout", s.cfg.QueueTimeout)
		s.writeHTTPError(ctx, fasthttp.StatusGatewayTimeout, CodeOverloaded, msgOverloaded, s.dataExpired)
		return
	case rejectedClosed:
		s.writeHTTPError(ctx, fasthttp.StatusServiceUnavailable, CodeOverloaded, msgOverloaded,
			"the server is shutting down")
		return
	}
	defer s.adm.release()

	// Write straight into the response's own pooled body buffer: SwapBody
	// hands it over and takes it back without a copy.
	buf := ctx.Response.SwapBody(nil)
	buf, unavailable := s.appendResponse(buf[:0], ctx.PostBody(), ctx.Time(), ctx.RemoteIP().String())
	setResponseBody(&ctx.Response, buf, &s.bodies)
	dropLargeRequestBody(&ctx.Request)
	ctx.SetContentTypeBytes(strJSON)
	if unavailable {
		// The backend could not be reached (ErrUnavailable): a load
		// balancer should try another gateway, a client later.
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	}
}

// recoverHandler turns a panic into a 500 with a JSON-RPC body. Nothing on
// the request path should panic, but the gateway runs inside the node: one
// malformed request must not take the chain down with it.
func (s *Server) recoverHandler(ctx *fasthttp.RequestCtx) {
	r := recover()
	if r == nil {
		return
	}
	s.stats.panics.Add(1)
	s.log.Error("rpcgw: panic serving request; this is a bug", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	ctx.Response.Reset()
	ctx.SetConnectionClose()
	// Not writeHTTPError: the observer may be what panicked.
	writeErrorBody(ctx, fasthttp.StatusInternalServerError, CodeInternal, msgInternal, "the gateway failed to handle this request")
}

// writeHTTPError answers a request that was not dispatched, with a JSON-RPC
// body so that clients that always parse JSON (koilib does) see the reason.
func (s *Server) writeHTTPError(ctx *fasthttp.RequestCtx, status, code int, message, data string) {
	writeErrorBody(ctx, status, code, message, data)
	s.observe(nil, code, ctx.Time())
}

func writeErrorBody(ctx *fasthttp.RequestCtx, status, code int, message, data string) {
	ctx.SetStatusCode(status)
	ctx.SetContentTypeBytes(strJSON)
	buf := ctx.Response.SwapBody(nil)
	buf = appendError(buf[:0], nullID, code, message, data)
	setResponseBody(&ctx.Response, buf, nil)
}

// keptBodyBuffer is the largest body buffer a connection keeps for its
// next request or response. fasthttp keeps each keep-alive connection's
// body buffers (the server's default, not ReduceMemoryUsage), so a connection
// that once answered a block read of 10 MB held 10 MB until it closed, and
// the node's memory grew with the largest answers its connections had
// ever sent: 173 MB of a 540 MB live heap in a soak whose client read
// every block (docs/reliability.md, Soak). Larger buffers are written
// once and left to the collector; the cost is an allocation per large
// response, which its encoding dwarfs.
const keptBodyBuffer = 256 << 10

// setResponseBody gives resp the body buf, whose storage it keeps for the
// next response only when it is small. A large buf goes back to pool (if
// not nil) once written.
func setResponseBody(resp *fasthttp.Response, buf []byte, pool *bodyPool) {
	if cap(buf) > keptBodyBuffer && pool != nil {
		pb := &pooledBody{buf: buf, pool: pool}
		pb.Reset(buf)
		resp.SetBodyStream(pb, len(buf))
		return
	}
	if cap(buf) > keptBodyBuffer {
		// SetBodyRaw leaves the kept buffer (emptied by SwapBody) alone
		// and drops its reference to buf at the next reset.
		resp.SetBodyRaw(buf)
		return
	}
	resp.SwapBody(buf)
}

// dropLargeRequestBody lets the collector have a request body buffer that
// a large batch grew (up to rpc.max_body_bytes), once the request is
// answered, instead of the connection keeping it.
func dropLargeRequestBody(req *fasthttp.Request) {
	if cap(req.Body()) > keptBodyBuffer {
		req.SwapBody(nil)
	}
}

// handleReadError answers requests fasthttp could not read: oversized body,
// oversized headers, read timeout, malformed HTTP. fasthttp closes the
// connection afterwards.
func (s *Server) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.writeHTTPError(ctx, fasthttp.StatusRequestEntityTooLarge, CodeTooLarge, msgTooLarge,
			fmt.Sprintf("the request body exceeds the %d-byte limit; send fewer calls per batch or smaller transactions", s.cfg.MaxBodyBytes))
	case errors.As(err, &small):
		s.writeHTTPError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, CodeInvalidRequest, msgInvalid,
			"the request headers are too large")
	case errors.As(err, &nerr) && nerr.Timeout():
		s.writeHTTPError(ctx, fasthttp.StatusRequestTimeout, CodeInvalidRequest, msgInvalid,
			fmt.Sprintf("the request was not received within %v", s.cfg.ReadTimeout))
	default:
		s.writeHTTPError(ctx, fasthttp.StatusBadRequest, CodeParseError, msgParse, "malformed HTTP request")
	}
}

func (s *Server) originAllowed(ctx *fasthttp.RequestCtx) []byte {
	if s.corsOrigins == nil {
		return nil
	}
	origin := ctx.Request.Header.PeekBytes(strOrigin)
	if len(origin) == 0 {
		return nil
	}
	if s.corsAny {
		return []byte("*")
	}
	if _, ok := s.corsOrigins[string(origin)]; ok {
		return origin
	}
	return nil
}

// applyCORS sets the response headers a browser needs to read the answer.
func (s *Server) applyCORS(ctx *fasthttp.RequestCtx) {
	if s.corsOrigins == nil {
		return
	}
	if !s.corsAny {
		// The answer depends on Origin: caches must not share it.
		ctx.Response.Header.Set(fasthttp.HeaderVary, "Origin")
	}
	if o := s.originAllowed(ctx); o != nil {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, o)
	}
}

// preflight answers OPTIONS with 204. Without an allowed origin it carries
// no CORS headers, so the browser refuses the call it was asking about.
func (s *Server) preflight(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(fasthttp.HeaderAllow, strAllow)
	s.applyCORS(ctx)
	if s.originAllowed(ctx) != nil {
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowMethods, strAllow)
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowHeaders, corsAllowHeader)
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlMaxAge, headerMaxAge)
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// appendResponse parses a request body and appends the whole response body.
// It reports unavailable when the request was dispatched and every call of
// it failed with ErrUnavailable (answered HTTP 503).
func (s *Server) appendResponse(dst, body []byte, start time.Time, client string) (_ []byte, unavailable bool) {
	p := s.parsers.Get()
	defer s.parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		s.observe(nil, CodeParseError, start)
		return appendError(dst, nullID, CodeParseError, msgParse, "the body is not valid JSON: "+err.Error()), false
	}
	switch v.Type() {
	case fastjson.TypeObject:
		pc := s.parseCall(v)
		pc.client = client
		return s.appendLimited(dst, &pc, start, 0)
	case fastjson.TypeArray:
		s.stats.batches.Add(1)
		elems, _ := v.Array()
		if len(elems) == 0 {
			s.observe(nil, CodeInvalidRequest, start)
			return appendError(dst, nullID, CodeInvalidRequest, msgInvalid, "the batch is empty; send at least one request"), false
		}
		if len(elems) > s.cfg.MaxBatch {
			s.observe(nil, CodeTooLarge, start)
			return appendError(dst, nullID, CodeTooLarge, msgTooLarge,
				fmt.Sprintf("the batch has %d requests; at most %d are allowed, split it", len(elems), s.cfg.MaxBatch)), false
		}
		// Decode every call first, so the backend can see the batch as a
		// whole (BatchPreparer) before the calls are served one by one.
		calls := make([]parsedCall, len(elems))
		for i, e := range elems {
			calls[i] = s.parseCall(e)
			calls[i].client = client
		}
		s.prepare(calls, client)
		base := len(dst)
		dst = append(dst, '[')
		allUnavailable := true
		for i := range calls {
			if i > 0 {
				dst = append(dst, ',')
			}
			var u bool
			dst, u = s.appendLimited(dst, &calls[i], start, base)
			allUnavailable = allUnavailable && u
		}
		return append(dst, ']'), allUnavailable
	}
	s.observe(nil, CodeInvalidRequest, start)
	return appendError(dst, nullID, CodeInvalidRequest, msgInvalid,
		"the body must be a JSON-RPC request object, or an array of them for a batch"), false
}

// appendLimited appends one call's response, replacing it by an error if it
// would take the response body (which starts at dst[base]) over
// MaxResponseBytes. The check runs after encoding, so memory briefly holds
// one oversized result; bounding the encoder itself was not worth the cost
// on every call.
func (s *Server) appendLimited(dst []byte, pc *parsedCall, start time.Time, base int) ([]byte, bool) {
	mark := len(dst)
	dst, c := s.appendParsed(dst, pc)
	if c.code == 0 && len(dst)-base > s.cfg.MaxResponseBytes {
		id := append([]byte(nil), dst[c.idStart:c.idEnd]...)
		size := len(dst) - mark
		dst = appendError(dst[:mark], id, CodeInternal, msgResponseLarge,
			fmt.Sprintf("the result of %s is %d bytes, which would take the response over the %d-byte limit; ask for fewer items",
				c.m.full, size, s.cfg.MaxResponseBytes))
		c.code = CodeInternal
	}
	s.observe(c.m, c.code, start)
	if c.code != 0 && s.log.Enabled(context.Background(), slog.LevelDebug) {
		name := ""
		if c.m != nil {
			name = c.m.full
		}
		s.log.Debug("rpcgw: call answered with an error", "method", name, "code", c.code)
	}
	return dst, c.unavailable
}

type callResult struct {
	m              *method // nil if the request named no served method
	code           int     // 0 or the JSON-RPC error code
	unavailable    bool    // the backend failed with ErrUnavailable
	idStart, idEnd int     // the encoded id in dst
}

// parsedCall is one request after validation and decoding, before the
// backend is called.
type parsedCall struct {
	client string // the client's IP, for the backend (ClientIP)
	idv    *fastjson.Value
	m      *method // nil if the request named no served method
	env    protoreflect.Message
	fail   struct {
		code          int // 0: no failure while parsing
		message, data string
	}
}

func (pc *parsedCall) failed(code int, message, data string) parsedCall {
	pc.fail.code, pc.fail.message, pc.fail.data = code, message, data
	return *pc
}

// parseCall validates one request object and decodes its params.
func (s *Server) parseCall(v *fastjson.Value) parsedCall {
	var pc parsedCall
	o, err := v.Object()
	if err != nil {
		return pc.failed(CodeInvalidRequest, msgInvalid, "each request must be a JSON object")
	}
	pc.idv = o.Get("id")
	switch {
	case pc.idv == nil:
		return pc.failed(CodeInvalidRequest, msgInvalid, `"id" is required (an integer or a string); notifications are not supported`)
	case !validID(pc.idv):
		return pc.failed(CodeInvalidRequest, msgInvalid, `"id" must be an integer, a string or null`)
	}
	if ver := o.Get("jsonrpc"); ver == nil || ver.Type() != fastjson.TypeString || string(ver.GetStringBytes()) != "2.0" {
		return pc.failed(CodeInvalidRequest, msgInvalid, `"jsonrpc" must be "2.0"`)
	}
	mv := o.Get("method")
	if mv == nil || mv.Type() != fastjson.TypeString {
		return pc.failed(CodeInvalidRequest, msgInvalid, `"method" must be a string such as "chain.get_head_info"`)
	}
	m, why := s.reg.lookup(mv.GetStringBytes())
	if m == nil {
		return pc.failed(CodeMethodNotFound, msgTranslate, why)
	}
	pc.m = m
	if m.refused {
		return pc.failed(CodeMethodNotFound, msgTranslate, m.full+" is not served on this endpoint")
	}
	pc.env = m.svc.reqType.New()
	params := pc.env.Mutable(m.reqField).Message()
	if pv := o.Get("params"); pv != nil && pv.Type() != fastjson.TypeNull {
		if pv.Type() != fastjson.TypeObject {
			return pc.failed(CodeMethodNotFound, msgTranslate, fmt.Sprintf(
				"parameters could not be parsed: params must be a JSON object with the fields of %s, not %s",
				m.paramName, pv.Type()))
		}
		if err := kjson.UnmarshalValue(pv, params.Interface()); err != nil {
			return pc.failed(CodeMethodNotFound, msgTranslate, fmt.Sprintf(
				"parameters could not be parsed: %v (params are the fields of %s)", err, m.paramName))
		}
	}
	return pc
}

// validID reports whether a present id is one JSON-RPC allows.
func validID(idv *fastjson.Value) bool {
	switch idv.Type() {
	case fastjson.TypeNull, fastjson.TypeString:
		return true
	case fastjson.TypeNumber:
		var buf [32]byte
		return isIntLiteral(idv.MarshalTo(buf[:0]))
	}
	return false
}

// prepare hands a batch's decoded calls to a BatchPreparer backend.
func (s *Server) prepare(calls []parsedCall, client string) {
	bp, ok := s.backend.(BatchPreparer)
	if !ok || len(calls) < 2 {
		return
	}
	ready := make([]PreparedCall, 0, len(calls))
	for i := range calls {
		if pc := &calls[i]; pc.fail.code == 0 {
			ready = append(ready, PreparedCall{Service: pc.m.svc.name, Request: pc.env.Interface()})
		}
	}
	if len(ready) < 2 {
		return
	}
	ctx := &callCtx{base: s.base, deadline: time.Now().Add(s.cfg.BackendTimeout), client: client}
	defer ctx.release()
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("rpcgw: backend panicked in Prepare", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	bp.Prepare(ctx, ready)
}

// appendParsed appends the response to one parsed request: the parse
// failure, or the backend's answer.
func (s *Server) appendParsed(dst []byte, pc *parsedCall) ([]byte, callResult) {
	c := callResult{m: pc.m}
	fail := func(code int, message, data string) ([]byte, callResult) {
		c.code = code
		return appendErrorTail(dst, code, message, data), c
	}
	dst = append(dst, respPrefix...)
	c.idStart = len(dst)
	dst, _ = appendID(dst, pc.idv)
	c.idEnd = len(dst)
	if pc.fail.code != 0 {
		return fail(pc.fail.code, pc.fail.message, pc.fail.data)
	}
	m, env := pc.m, pc.env
	var err error

	resp, cerr, unavailable := s.callBackend(m, env.Interface(), pc.client)
	if unavailable {
		s.warn("rpcgw: backend unavailable", "method", m.full, "error", cerr)
		c.unavailable = true
		return fail(CodeOverloaded, msgUnavailable, cerr)
	}
	if cerr != "" {
		s.warn("rpcgw: backend failed", "method", m.full, "error", cerr)
		return fail(CodeInternal, msgInternal, cerr)
	}
	rm := resp.ProtoReflect()
	fd := rm.WhichOneof(m.svc.respOneof)
	switch {
	case fd == nil:
		s.warn("rpcgw: backend returned an empty response envelope", "method", m.full)
		return fail(CodeInternal, msgInternal, "the backend returned an empty response")
	case fd.Number() == m.svc.errField.Number():
		es := rm.Get(fd).Message()
		msg := es.Get(m.svc.errMsg).String()
		if msg == "" {
			msg = msgInternal
		}
		return fail(CodeInternal, msg, es.Get(m.svc.errData).String())
	case fd.Number() != m.respField.Number():
		s.warn("rpcgw: backend answered with the wrong member", "method", m.full, "member", string(fd.Name()))
		return fail(CodeInternal, msgInternal, "the backend answered a different method")
	}
	mark := len(dst)
	dst = append(dst, `,"result":`...)
	result := rm.Get(fd).Message().Interface()
	if m.large.Load() {
		dst = s.bodies.roomFor(dst, result)
	}
	start := len(dst)
	dst, err = kjson.Append(dst, result)
	if big := len(dst)-start > keptBodyBuffer/2; big != m.large.Load() {
		m.large.Store(big)
	}
	if err != nil {
		dst = dst[:mark]
		s.warn("rpcgw: result could not be encoded", "method", m.full, "error", err)
		return fail(CodeInternal, msgInternal, "the result could not be encoded as JSON")
	}
	return append(dst, '}'), c
}

// callBackend calls the backend under BackendTimeout and checks the reply's
// envelope type. It returns the reply, or the data of a -32603 error, or
// with unavailable set the data of an ErrUnavailable failure.
func (s *Server) callBackend(m *method, req proto.Message, client string) (resp proto.Message, fail string, unavailable bool) {
	ctx := &callCtx{base: s.base, deadline: time.Now().Add(s.cfg.BackendTimeout), client: client}
	defer ctx.release()
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("rpcgw: backend panicked", "method", m.full, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, fail, unavailable = nil, "rpc failed, the backend failed", false
		}
	}()
	// The data strings start as Koinos's do ("rpc failed, ..."). The
	// timeout's is Koinos's exact text, with our detail after it: koilib's
	// sendTransaction looks for "rpc failed, context deadline exceeded" and
	// then treats the transaction as possibly accepted and waits for it.
	resp, err := s.backend.Serve(ctx, m.svc.name, req)
	if err != nil {
		switch {
		case s.base.Err() != nil:
			return nil, "rpc failed, the server is shutting down", false
		case errors.Is(err, ErrUnavailable):
			return nil, "rpc failed, " + clipLong(err.Error()), true
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, fmt.Sprintf("rpc failed, context deadline exceeded (the backend did not answer %s within %v)", m.full, s.cfg.BackendTimeout), false
		}
		return nil, "rpc failed, " + clipLong(err.Error()), false
	}
	if resp == nil || !resp.ProtoReflect().IsValid() {
		return nil, "rpc failed, the backend returned no response", false
	}
	if name := resp.ProtoReflect().Descriptor().FullName(); name != m.svc.respName {
		return nil, fmt.Sprintf("rpc failed, the backend returned %s, not %s", name, m.svc.respName), false
	}
	return resp, "", false
}

func clipLong(s string) string {
	if len(s) > 256 {
		return s[:253] + "..."
	}
	return s
}

// appendID appends the request's id for the response: an integer literal
// verbatim, a string re-encoded (fastjson does not validate escapes, so the
// raw text could be invalid JSON), or null. It appends null and reports false
// for anything else.
func appendID(dst []byte, idv *fastjson.Value) ([]byte, bool) {
	if idv == nil {
		return append(dst, nullID...), true
	}
	switch idv.Type() {
	case fastjson.TypeNull:
		return append(dst, nullID...), true
	case fastjson.TypeString:
		return kjson.AppendString(dst, string(idv.GetStringBytes())), true
	case fastjson.TypeNumber:
		mark := len(dst)
		dst = idv.MarshalTo(dst)
		if isIntLiteral(dst[mark:]) {
			return dst, true
		}
		return append(dst[:mark], nullID...), false
	}
	return append(dst, nullID...), false
}

// isIntLiteral reports whether b is a JSON integer: -?(0|[1-9][0-9]*).
// Fractions and exponents are refused, as Koinos refuses fractional ids.
func isIntLiteral(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (s *Server) observe(m *method, code int, start time.Time) {
	s.stats.calls.Add(1)
	if code != 0 {
		s.stats.callErrors.Add(1)
	}
	if s.obs == nil {
		return
	}
	name := ""
	if m != nil {
		name = m.full
	}
	s.obs.ObserveRequest(name, code, time.Since(start))
}
