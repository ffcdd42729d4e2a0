package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw/client"
)

// The honest load: one sender per node, each an Ed25519 account sending
// transfers of 1 to the next sender through its node, as a careful wallet
// would. Each nonce gets exactly one signed transaction, built once: a
// sender never signs two transactions with one nonce, so a transaction on
// the chain twice is the node's fault, not the load's. When a submission
// fails (the node is killed, paused, cut off) the sender sends the same
// bytes again, to the next node; when the chain's nonce stalls below what
// was acknowledged (a node killed with the transactions in its mempool,
// which is not durable: docs/operations.md, Durability), it resubmits the
// same bytes from the chain's nonce on.

const (
	// maxAhead bounds a sender's transactions sent but not yet on its
	// node's head chain.
	maxAhead = 64
	// stallAfter is how long the chain's nonce may stay below what was
	// acknowledged before the missing transactions are sent again.
	stallAfter = 4 * time.Second
	// transferRcLimit is each transfer's rc limit; the senders are funded
	// far beyond it.
	transferRcLimit = 10_000_000
	senderFunding   = 10_000_000_000_000
)

// rpcs is how the load and the runner reach the nodes.
type rpcs interface {
	client(i int) *client.Client
}

type sender struct {
	idx    int
	key    keys.Signer
	to     koinos.Address
	net    rpcs
	token  koinos.Address
	chain  []byte
	target int // the node it sends through now

	mu struct {
		sync.Mutex
		txs        []*protocol.Transaction // by nonce - 1
		acked      []bool
		sent       uint64 // the highest nonce acknowledged or known to the network
		resubmits  int
		lostAcked  int // acknowledged before, and acknowledged again by a resubmission: no node had it
		chainNonce uint64
		movedAt    time.Time // when chainNonce last moved
	}
}

func newSender(idx int, key keys.Signer, to koinos.Address, net rpcs, token koinos.Address, chainID []byte) *sender {
	s := &sender{idx: idx, key: key, to: to, net: net, token: token, chain: chainID, target: idx % Nodes}
	s.mu.movedAt = time.Now()
	return s
}

// run sends at rate per second until ctx ends.
func (s *sender) run(ctx context.Context, rate float64) {
	every := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.step(ctx, true)
	}
}

// step refreshes the chain's nonce, resubmits after a stall, and, with
// more, sends the next transaction (or the same one again after a
// failure).
func (s *sender) step(ctx context.Context, more bool) {
	s.refreshNonce(ctx)
	s.mu.Lock()
	sent, chainNonce, stalled := s.mu.sent, s.mu.chainNonce, time.Since(s.mu.movedAt) > stallAfter
	s.mu.Unlock()
	if sent > chainNonce && stalled {
		s.resubmit(ctx, chainNonce+1, min(sent, chainNonce+maxAhead))
		return
	}
	if !more || sent-chainNonce >= maxAhead {
		return
	}
	tx, err := s.txAt(sent + 1)
	if err != nil {
		return
	}
	if s.submit(ctx, sent+1, tx) {
		s.mu.Lock()
		s.mu.sent = max(s.mu.sent, sent+1)
		s.mu.Unlock()
	}
}

// txAt is the transaction of a nonce, built and signed the first time.
func (s *sender) txAt(nonce uint64) (*protocol.Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nonce <= uint64(len(s.mu.txs)) {
		return s.mu.txs[nonce-1], nil
	}
	if nonce != uint64(len(s.mu.txs))+1 {
		return nil, fmt.Errorf("e2e: sender %d: nonce %d built before %d", s.idx, nonce, len(s.mu.txs)+1)
	}
	tx, err := txbuilder.Transfer(s.key, s.token, s.to, 1, txbuilder.Header{ChainID: s.chain, Nonce: nonce, RcLimit: transferRcLimit})
	if err != nil {
		return nil, err
	}
	s.mu.txs = append(s.mu.txs, tx)
	s.mu.acked = append(s.mu.acked, false)
	return tx, nil
}

// submit sends tx to the current target node and reports whether the
// network has it now: acknowledged, or refused as already pending.
// Any other failure moves the sender to the next node.
func (s *sender) submit(ctx context.Context, nonce uint64, tx *protocol.Transaction) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	var r chainrpc.SubmitTransactionResponse
	err := s.net.client(s.target).Call(cctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &r)
	cancel()
	if err == nil {
		s.mu.Lock()
		s.mu.acked[nonce-1] = true
		s.mu.Unlock()
		return true
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		code, ok := ce.ChainCode()
		if ok && code == chainpb.ErrorCode_invalid_nonce && strings.Contains(ce.Error(), "already pending") {
			return true
		}
		if ce.Temporary() || ok && code == chainpb.ErrorCode_pending_transaction_limit_exceeded {
			return false // the same node, later
		}
	}
	s.target = (s.target + 1) % Nodes
	return false
}

// resubmit sends the transactions of nonces from..to again, in order,
// stopping at the first failure.
func (s *sender) resubmit(ctx context.Context, from, to uint64) {
	for n := from; n <= to && ctx.Err() == nil; n++ {
		tx, err := s.txAt(n)
		if err != nil {
			return
		}
		s.mu.Lock()
		wasAcked := s.mu.acked[n-1]
		s.mu.acked[n-1] = false
		s.mu.resubmits++
		s.mu.Unlock()
		ok := s.submit(ctx, n, tx)
		s.mu.Lock()
		if wasAcked && s.mu.acked[n-1] {
			s.mu.lostAcked++
		}
		s.mu.acked[n-1] = s.mu.acked[n-1] || wasAcked
		s.mu.Unlock()
		if !ok {
			return
		}
	}
	s.mu.Lock()
	s.mu.movedAt = time.Now() // give the resubmitted ones time
	s.mu.Unlock()
}

// refreshNonce reads the sender's nonce on its target node's head.
func (s *sender) refreshNonce(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var r chainrpc.GetAccountNonceResponse
	if err := s.net.client(s.target).Call(cctx, "chain.get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: s.key.Address().Bytes()}, &r); err != nil {
		return
	}
	n, err := koinos.DecodeNonce(r.Nonce)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n != s.mu.chainNonce {
		s.mu.chainNonce, s.mu.movedAt = n, time.Now()
	}
	// A transaction the network had though it was not acknowledged
	// (a submission that timed out) moves sent on.
	s.mu.sent = max(s.mu.sent, min(n, uint64(len(s.mu.txs))))
}

// drained reports whether the chain's nonce has reached every
// transaction sent.
func (s *sender) drained() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.chainNonce >= s.mu.sent
}

// records is every transaction built, with whether one was acknowledged.
func (s *sender) records() []TxRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TxRecord, len(s.mu.txs))
	for i, tx := range s.mu.txs {
		out[i] = TxRecord{ID: hexID(tx.Id), Sender: s.idx, Nonce: uint64(i + 1), Acked: s.mu.acked[i]}
	}
	return out
}

func (s *sender) counts() (resubmits, lostAcked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.resubmits, s.mu.lostAcked
}

func hexID(b []byte) string { return fmt.Sprintf("0x%x", b) }
