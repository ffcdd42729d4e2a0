package p2p

import (
	"context"
	"errors"
	"fmt"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

func TestVerdictOf(t *testing.T) {
	kerr := func(code chainpb.ErrorCode) error { return koinos.Errorf(code, "code %d", code) }
	future := fmt.Errorf("%w: %w", chain.ErrFutureBlock, kerr(chainpb.ErrorCode_timestamp_out_of_bounds))
	tests := []struct {
		name string
		err  error
		want blockVerdict
	}{
		{"nil", nil, blockAccepted},
		{"known", chain.ErrKnownBlock, blockKnown},
		{"known, wrapped", fmt.Errorf("apply: %w", chain.ErrKnownBlock), blockKnown},
		{"canceled", context.Canceled, blockNotNow},
		{"deadline", fmt.Errorf("verify: %w", context.DeadlineExceeded), blockNotNow},
		{"overloaded", sigverify.ErrOverloaded, blockNotNow},
		{"overloaded, wrapped", fmt.Errorf("verify: %w", sigverify.ErrOverloaded), blockNotNow},
		{"source limit", sigverify.ErrSourceLimit, blockNotNow},
		{"verifier closed", sigverify.ErrClosed, blockNotNow},
		{"unknown previous", kerr(chainpb.ErrorCode_unknown_previous_block), blockUnknownParent},
		{"unknown previous, wrapped", fmt.Errorf("block 7: %w", kerr(chainpb.ErrorCode_unknown_previous_block)), blockUnknownParent},
		{"pre irreversibility", kerr(chainpb.ErrorCode_pre_irreversibility_block), blockKnown},
		{"block state (fork database full)", kerr(chainpb.ErrorCode_block_state_error), blockNotNow},
		{"timestamp ahead of the clock", future, blockNotNow},
		{"timestamp ahead of the clock, wrapped again", fmt.Errorf("apply: %w", future), blockNotNow},
		{"timestamp out of bounds otherwise", kerr(chainpb.ErrorCode_timestamp_out_of_bounds), blockInvalid},
		{"invalid signature", kerr(chainpb.ErrorCode_invalid_signature), blockInvalid},
		{"internal error code", kerr(chainpb.ErrorCode_internal_error), blockInvalid},
		{"joined: canceled wins", errors.Join(kerr(chainpb.ErrorCode_invalid_signature), context.Canceled), blockNotNow},
		{"plain error", errors.New("something else"), blockInvalid},
	}
	for _, tt := range tests {
		if got := verdictOf(tt.err); got != tt.want {
			t.Errorf("%s: verdictOf(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// A gossip batch is relayed only when every transaction in it was
// verified: one the verifier had no room for is dropped unrelayed (its
// signatures were never checked) and its sender is not blamed.
func TestBatchVerdict(t *testing.T) {
	admission := errors.New("mempool: nonce already used") // verified, not admitted
	for _, c := range []struct {
		name   string
		errs   []error
		faults int
		want   pubsub.ValidationResult
	}{
		{"all admitted", []error{nil, nil}, 0, pubsub.ValidationAccept},
		{"verified, some not admitted", []error{nil, admission}, 0, pubsub.ValidationAccept},
		{"an invalid signature", []error{nil, errors.New("invalid signature")}, 1, pubsub.ValidationReject},
		{"verifier overloaded", []error{sigverify.ErrOverloaded, sigverify.ErrOverloaded}, 0, pubsub.ValidationIgnore},
		{"one over its source's share", []error{nil, fmt.Errorf("verify: %w", sigverify.ErrSourceLimit)}, 0, pubsub.ValidationIgnore},
		{"timed out", []error{context.DeadlineExceeded}, 0, pubsub.ValidationIgnore},
		{"invalid beats unverified", []error{sigverify.ErrOverloaded, errors.New("invalid signature")}, 1, pubsub.ValidationReject},
	} {
		if got := batchVerdict(c.errs, c.faults); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
