package rpcgw

import (
	"errors"
	"strconv"

	"github.com/emberchain/ember/proto/kjson"
)

// JSON-RPC error codes. The first five are the ones koinos-jsonrpc uses, with
// its meanings (KOINOS.md §2.4), so existing tools keep working; note that
// Koinos reports unparseable params as -32601, not the specification's
// -32602, and uses -32602 for an oversized request.
const (
	CodeParseError     = -32700 // the body is not JSON
	CodeInvalidRequest = -32600 // not a JSON-RPC 2.0 request object
	CodeMethodNotFound = -32601 // unknown or refused method, or params that do not translate
	CodeTooLarge       = -32602 // body or batch over its limit
	CodeInternal       = -32603 // backend failure, timeout or error_status; response too large
	// CodeOverloaded is Ember's: the request was not served because every
	// worker was busy (HTTP 503), it waited past QueueTimeout (HTTP 504), or
	// the backend could not be reached (ErrUnavailable, HTTP 503).
	// It is in the implementation-defined range so that a client can tell
	// "retry later" from a backend failure without parsing messages.
	CodeOverloaded = -32005
)

// Koinos's messages, kept verbatim because tools match on them; what went
// wrong and what was expected goes in data.
const (
	msgParse         = "Unable to parse request"
	msgInvalid       = "Invalid request"
	msgTranslate     = "Unable to translate request"
	msgTooLarge      = "Request too large"
	msgInternal      = "An internal server error has occurred"
	msgOverloaded    = "Server overloaded"
	msgUnavailable   = "Service unavailable"
	msgResponseLarge = "Response too large"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown.
var ErrServerClosed = errors.New("rpcgw: server closed")

// ErrUnavailable is what a Backend wraps when it could not hand the call to
// anything that serves it (a remote backend whose broker is down, or that no
// node consumes), so that the request certainly was not served. The gateway
// answers such a call -32005 "Service unavailable" with the error's text as
// data, and a request whose every call failed so with HTTP 503 and
// Retry-After, as it answers overload: retry later or elsewhere.
var ErrUnavailable = errors.New("backend unavailable")

var (
	respPrefix = []byte(`{"jsonrpc":"2.0","id":`)
	nullID     = []byte("null")
)

// appendErrorTail appends `,"error":{...}}`, closing a response object whose
// prefix and id are already written. data is omitted when empty, as Koinos
// does, so that koilib shows the bare message.
func appendErrorTail(dst []byte, code int, message, data string) []byte {
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = kjson.AppendString(dst, message)
	if data != "" {
		dst = append(dst, `,"data":`...)
		dst = kjson.AppendString(dst, data)
	}
	return append(dst, "}}"...)
}

// appendError appends a whole error response with the given encoded id.
func appendError(dst, id []byte, code int, message, data string) []byte {
	dst = append(dst, respPrefix...)
	dst = append(dst, id...)
	return appendErrorTail(dst, code, message, data)
}
