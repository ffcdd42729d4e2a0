package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mr-tron/base58"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/netio/amqp"
	broadcastpb "github.com/emberchain/ember/proto/koinos/broadcast"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/store"
)

// The event half of the AMQP bridge (docs/bus.md): the store's durable
// event log, expanded into Koinos's broadcasts, is what the publisher
// (netio/amqp) follows. Each log record stands for a range of sequence
// numbers (store/eventlog.go); here each number becomes one message:
//
//	irreversible      koinos.block.irreversible   block_irreversible
//	block accepted    koinos.block.accept         block_accepted{block, receipt, live, head}
//	                  koinos.mempool.block_accepted   the same bytes
//	                  koinos.event.<source>.<name>    event_parcel, per contract event:
//	                                                  the block's, then each transaction's
//	fork heads        koinos.block.forks          fork_heads (heads by height, highest first)
//	mempool accepted  koinos.transaction.accept   transaction_accepted, then
//	                  koinos.mempool.accept       mempool_accepted, per transaction
//	failed            koinos.transaction.fail     transaction_failed, per transaction

// PublisherConsumer is the publisher's name among the log's consumers.
const PublisherConsumer = "amqp-publisher"

// logRecordsPerRead bounds the log records one Events call reads.
const logRecordsPerRead = 16

// eventSource is the node's event log as an amqp.EventSource.
type eventSource struct {
	st   *store.Store
	name string
	// contract publishes koinos.event.<contract>.<name> (amqp.contract_events).
	contract bool
}

var _ amqp.EventSource = eventSource{}

func (s eventSource) Cursor() (uint64, error)   { return s.st.RegisterConsumer(s.name) }
func (s eventSource) Confirm(next uint64) error { return s.st.ConfirmLog(s.name, next) }
func (s eventSource) Wait() <-chan struct{}     { return s.st.LogWait() }
func (s eventSource) Rewind(from uint64) error  { return s.st.RewindConsumer(s.name, from) }
func (s eventSource) blockOf(r *store.LogRecord) (*chain.BlockEntry, error) {
	e, err := s.st.BlockByID(r.Block.ID)
	if err != nil {
		return nil, fmt.Errorf("block %d of event %d: %w", r.Block.Height, r.Seq, err)
	}
	return e, nil
}

func (s eventSource) Events(from uint64, max int) ([]amqp.Event, uint64, error) {
	recs, err := s.st.ReadLog(from, logRecordsPerRead)
	var gap *store.LogGapError
	if errors.As(err, &gap) {
		return nil, from, &amqp.GapError{From: gap.From, Next: gap.First}
	}
	if err != nil {
		return nil, from, err
	}
	var out []amqp.Event
	next := from
	for i := range recs {
		r := &recs[i]
		evs, err := s.expand(r)
		if err != nil {
			return nil, from, err
		}
		if uint64(len(evs)) != r.Span {
			return nil, from, fmt.Errorf("event log record %d spans %d sequence numbers but makes %d messages", r.Seq, r.Span, len(evs))
		}
		for k := range evs {
			if evs[k].Seq < from || evs[k].Key == "" {
				continue // before from, or not published here
			}
			if len(out) == max {
				return out, evs[k].Seq, nil
			}
			out = append(out, evs[k])
		}
		next = r.Next()
	}
	return out, next, nil
}

// expand turns a record into its messages, numbered from its Seq.
func (s eventSource) expand(r *store.LogRecord) ([]amqp.Event, error) {
	var out []amqp.Event
	add := func(key string, body []byte) {
		out = append(out, amqp.Event{Seq: r.Seq + uint64(len(out)), Key: key, Body: body})
	}
	switch r.Kind {
	case store.LogIrreversible:
		body, err := (&broadcastpb.BlockIrreversible{Topology: r.Block.Proto()}).MarshalVT()
		if err != nil {
			return nil, err
		}
		add(amqp.KeyBlockIrreversible, body)
	case store.LogForkHeads:
		heads := slices.Clone(r.Heads)
		slices.SortStableFunc(heads, func(a, b chain.Topology) int { return -cmpHeight(a, b) })
		fh := &broadcastpb.ForkHeads{LastIrreversibleBlock: r.LIB.Proto()}
		for _, h := range heads {
			fh.Heads = append(fh.Heads, h.Proto())
		}
		body, err := fh.MarshalVT()
		if err != nil {
			return nil, err
		}
		add(amqp.KeyBlockForks, body)
	case store.LogBlockAccepted:
		e, err := s.blockOf(r)
		if err != nil {
			return nil, err
		}
		body, err := (&broadcastpb.BlockAccepted{Block: e.Block, Receipt: e.Receipt, Live: r.Live, Head: r.Head}).MarshalVT()
		if err != nil {
			return nil, err
		}
		add(amqp.KeyBlockAccept, body)
		add(amqp.KeyMempoolBlockAccept, body)
		parcel := func(ev *protocol.EventData, txID []byte) error {
			if !s.contract {
				add("", nil) // numbered, not published
				return nil
			}
			b, err := (&broadcastpb.EventParcel{BlockId: e.Block.Id, Height: e.Height, TransactionId: txID, Event: ev}).MarshalVT()
			if err != nil {
				return err
			}
			add(amqp.KeyContractEventPrefix+base58.Encode(ev.GetSource())+"."+ev.GetName(), b)
			return nil
		}
		for _, ev := range e.Receipt.GetEvents() {
			if err := parcel(ev, nil); err != nil {
				return nil, err
			}
		}
		for _, tr := range e.Receipt.GetTransactionReceipts() {
			for _, ev := range tr.GetEvents() {
				if err := parcel(ev, tr.GetId()); err != nil {
					return nil, err
				}
			}
		}
	case store.LogMempoolAccepted:
		for _, m := range r.Mempool {
			// transaction_accepted{transaction, receipt, height} and
			// mempool_accepted{transaction, receipt, height,
			// pending_rc_used} share fields 1 to 3: built from the logged
			// bytes, without decoding them.
			common := protowire.AppendTag(nil, 1, protowire.BytesType)
			common = protowire.AppendBytes(common, m.Transaction)
			common = protowire.AppendTag(common, 2, protowire.BytesType)
			common = protowire.AppendBytes(common, m.Receipt)
			if m.Height != 0 {
				common = protowire.AppendTag(common, 3, protowire.VarintType)
				common = protowire.AppendVarint(common, m.Height)
			}
			add(amqp.KeyTransactionAccept, common)
			mp := common
			if m.PendingRC != 0 {
				mp = protowire.AppendTag(slices.Clip(common), 4, protowire.VarintType)
				mp = protowire.AppendVarint(mp, m.PendingRC)
			}
			add(amqp.KeyMempoolAccept, mp)
		}
	case store.LogTransactionFailed:
		for _, id := range r.Failed {
			body, err := (&broadcastpb.TransactionFailed{Id: id.Multihash()}).MarshalVT()
			if err != nil {
				return nil, err
			}
			add(amqp.KeyTransactionFail, body)
		}
	default:
		return nil, fmt.Errorf("event log record %d: kind %v has no broadcast", r.Seq, r.Kind)
	}
	return out, nil
}

func cmpHeight(a, b chain.Topology) int {
	switch {
	case a.Height < b.Height:
		return -1
	case a.Height > b.Height:
		return 1
	}
	return 0
}

// ErrNoPublisher is returned by ReplayEvents on a node that does not
// publish events (amqp.url or amqp.events unset).
var ErrNoPublisher = errors.New("this node publishes no events (amqp.url is empty or amqp.events is off)")

// ReplayEvents makes the AMQP publisher publish again from sequence number
// seq or, with byHeight, from the first event about the block at height
// seq. It returns the sequence number the replay starts at.
func (n *Node) ReplayEvents(ctx context.Context, seq uint64, byHeight bool) (uint64, error) {
	if n.pub == nil {
		return 0, ErrNoPublisher
	}
	from := seq
	if byHeight {
		s, ok, err := n.store.LogSeqOfHeight(seq)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("no event about height %d yet (the head is %d)", seq, n.chain.Head().Height)
		}
		from = s
	}
	return from, n.pub.Replay(ctx, from)
}
