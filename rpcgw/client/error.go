package client

import (
	"encoding/json"
	"fmt"
	"net/http"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// JSON-RPC error codes a node answers with (see package rpcgw).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601 // also params that could not be parsed, as Koinos
	CodeTooLarge       = -32602
	CodeInternal       = -32603 // backend failures and chain errors
	CodeOverloaded     = -32005 // Ember: the node was too busy; retry later
)

// Error is a JSON-RPC error answered by the node.
type Error struct {
	Code    int
	Message string
	// Data is the error's data. For chain errors it is a JSON document such
	// as {"code":-201,"logs":["..."]}; see ChainCode and ChainLogs.
	Data string
	// HTTPStatus is the HTTP status of the response that carried the error:
	// 200 for ordinary errors, 503 or 504 when the node was overloaded.
	HTTPStatus int
}

func (e *Error) Error() string {
	if e.Data == "" {
		return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("rpc error %d: %s: %s", e.Code, e.Message, e.Data)
}

// Temporary reports whether the call was refused for load and may succeed
// if retried later.
func (e *Error) Temporary() bool {
	return e.Code == CodeOverloaded || e.HTTPStatus == http.StatusServiceUnavailable || e.HTTPStatus == http.StatusGatewayTimeout
}

type chainData struct {
	Code *int32   `json:"code"`
	Logs []string `json:"logs"`
}

func (e *Error) chainData() (chainData, bool) {
	var d chainData
	if e.Data == "" || e.Data[0] != '{' || json.Unmarshal([]byte(e.Data), &d) != nil {
		return d, false
	}
	return d, true
}

// ChainCode returns the Koinos chain error code (koinos/chain/error.proto,
// e.g. invalid_nonce = -201) carried in Data, and whether there was one.
func (e *Error) ChainCode() (chainpb.ErrorCode, bool) {
	d, ok := e.chainData()
	if !ok || d.Code == nil {
		return 0, false
	}
	return chainpb.ErrorCode(*d.Code), true
}

// ChainLogs returns the logs carried in Data, if any.
func (e *Error) ChainLogs() []string {
	d, _ := e.chainData()
	return d.Logs
}
