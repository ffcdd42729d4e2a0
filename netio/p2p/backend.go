package p2p

import (
	"context"
	"errors"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Node is what the network needs from the node: its view of the chain,
// its event stream, the ways in for transactions and blocks, and the block
// reads peers are served from. node.Node implements it.
type Node interface {
	// View is the chain as of the last durable step.
	View() *chain.View
	// Events is the node's event stream.
	Events() *events.Stream
	// MaxBlockTransactions is the genesis limit on a block.
	MaxBlockTransactions() int

	// AdmitTransactions verifies a gossip batch and admits the valid
	// transactions to the mempool; per transaction nil or why not, and how
	// many failed verification (the sender's fault).
	AdmitTransactions(ctx context.Context, txs []*protocol.Transaction, origin events.Origin, peer string) (errs []error, verifyErrs int)
	// SubmitBlockFrom verifies and applies one block (chain.ErrKnownBlock
	// when it is already known).
	SubmitBlockFrom(ctx context.Context, b *protocol.Block, origin events.Origin, peer string) (*chain.BlockEntry, error)
	// VerifyBlock checks a block's signatures without applying it.
	VerifyBlock(ctx context.Context, b *protocol.Block) (*sigverify.VerifiedBlock, error)
	// ApplyBlocks applies verified blocks as one group.
	ApplyBlocks(ctx context.Context, vbs []*sigverify.VerifiedBlock, origin events.Origin, peer string) ([]*chain.BlockEntry, error)

	// HasBlock reports whether a block is stored (on any fork).
	HasBlock(id koinos.Digest) bool
	// BlockIDAt returns the id of the block at height on the chain ending
	// at head; ok is false when head is not stored or is lower.
	BlockIDAt(head koinos.Digest, height uint64) (id koinos.Digest, ok bool, err error)
	// BlocksByHeight returns stored blocks from height start upward on the
	// chain ending at head (fewer when they are large); ok is false when
	// head is not stored.
	BlocksByHeight(head koinos.Digest, start uint64, n int) (blocks []*protocol.Block, ok bool, err error)
	// BlockByID returns a stored block, or nil.
	BlockByID(id koinos.Digest) (*protocol.Block, error)
}

// blockVerdict sorts the error of a block from a peer.
type blockVerdict int

const (
	blockAccepted      blockVerdict = iota
	blockKnown                      // already held, or at or below the last irreversible block
	blockUnknownParent              // the parent is missing: sync from the sender
	blockNotNow                     // the node could not take it now (overloaded, stopping, clock): not the sender's fault
	blockInvalid                    // the block breaks the rules: the sender's fault
)

// verdictOf classifies SubmitBlockFrom's and ApplyBlocks' errors.
func verdictOf(err error) blockVerdict {
	if err == nil {
		return blockAccepted
	}
	if errors.Is(err, chain.ErrKnownBlock) {
		return blockKnown
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, sigverify.ErrOverloaded) || errors.Is(err, sigverify.ErrSourceLimit) || errors.Is(err, sigverify.ErrClosed) {
		return blockNotNow
	}
	var ke *koinos.Error
	if errors.As(err, &ke) {
		switch ke.Code {
		case chainpb.ErrorCode_unknown_previous_block:
			return blockUnknownParent
		case chainpb.ErrorCode_pre_irreversibility_block:
			return blockKnown
		case chainpb.ErrorCode_block_state_error:
			return blockNotNow // the fork database is full
		case chainpb.ErrorCode_timestamp_out_of_bounds:
			// Ahead of this node's clock: the producer's clock or ours is
			// off; a block is never re-sent, so it is dropped, but the
			// relay is not blamed.
			if errors.Is(err, chain.ErrFutureBlock) {
				return blockNotNow
			}
		}
		return blockInvalid
	}
	// Anything else from the verifier is about the block's form or
	// signatures (sigverify wraps them as koinos errors too); an error the
	// node itself raised (its store failing) stops the node anyway.
	return blockInvalid
}
