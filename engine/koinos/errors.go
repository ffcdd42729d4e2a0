package koinos

import (
	"errors"
	"fmt"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// Error is a chain error with its Koinos error code (koinos/chain/error.proto).
// Codes at or above 1 are reversions (the transaction is kept, its state
// changes rolled back, its rc charged); codes at or below -1 are failures
// (the transaction, or the block holding it, is rejected). The JSON-RPC
// gateway reports Code and Logs in the error's data, as Koinos does.
type Error struct {
	Code    chainpb.ErrorCode
	Message string
	Logs    []string
}

func (e *Error) Error() string { return e.Message }

// IsReversion reports whether the error reverts rather than fails.
func (e *Error) IsReversion() bool { return e.Code >= 1 }

// Errorf builds an Error with a formatted message.
func Errorf(code chainpb.ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Koinos code of err: its own if it is (or wraps) an
// *Error, otherwise internal_error.
func CodeOf(err error) chainpb.ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return chainpb.ErrorCode_internal_error
}
