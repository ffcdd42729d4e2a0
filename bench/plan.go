package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/proto/kjson"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// plan is a run's transactions, signed and encoded before the clock starts,
// so the measured window holds only sending, the node's work and
// observation.
//
// Transaction i belongs to account i mod K with that account's next nonce
// for its (i div K)-th transaction. Each account's transactions are thus
// spread evenly over the run, and any K consecutive indexes use K distinct
// accounts — which is what lets a worker put up to K/C transactions in one
// JSON-RPC batch without two of them sharing an account.
type plan struct {
	scheme   keys.Scheme
	accounts int
	// body[i] is transaction i's JSON-RPC request object; its id is i, so
	// batch answers map straight back to transactions.
	body  [][]byte
	ids   map[koinos.Digest]int32
	acct  []int32
	nonce []uint64
	bytes int64
}

// chainInfo is what building transactions for a chain takes.
type chainInfo struct {
	chainID    []byte // multihash
	token      koinos.Address
	intervalMs int64
}

// buildPlan signs n transfers (signTransfer) on every core. next[a] is
// account a's next nonce. progress, if set, counts signed transactions.
func buildPlan(ctx context.Context, ks []keys.Signer, next []uint64, n int, ci chainInfo, rcLimit uint64, progress *atomic.Int64) (*plan, error) {
	if n < 1 {
		return nil, fmt.Errorf("bench: the number of transactions must be at least 1, got %d", n)
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("bench: at most %d transactions per run", 1<<31-1)
	}
	k := len(ks)
	p := &plan{
		scheme: ks[0].Scheme(), accounts: k,
		body: make([][]byte, n), acct: make([]int32, n), nonce: make([]uint64, n),
	}
	sink := sinkAddress()
	txIDs := make([]koinos.Digest, n)
	errs := make([]error, n)
	var stopped atomic.Bool
	parallelFor(n, func(i int) {
		if stopped.Load() {
			return
		}
		if i%1024 == 0 && ctx.Err() != nil {
			stopped.Store(true)
			return
		}
		a := i % k
		nonce := next[a] + uint64(i/k)
		b, id, err := signTransfer(ks, sink, int32(i), nonce, ci, rcLimit)
		if err != nil {
			errs[i] = err
			return
		}
		p.body[i], p.acct[i], p.nonce[i], txIDs[i] = b, int32(a), nonce, id
		if progress != nil {
			progress.Add(1)
		}
	})
	if stopped.Load() {
		return nil, ctx.Err()
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench: sign transaction %d: %w", i, err)
		}
	}
	p.ids = make(map[koinos.Digest]int32, n)
	for i, id := range txIDs {
		p.ids[id] = int32(i)
		p.bytes += int64(len(p.body[i]))
	}
	return p, nil
}

// sinkAddress receives the transfers of a run with one account.
func sinkAddress() koinos.Address {
	return deriveKey(keys.SchemeEd25519, "ember-bench/sink").Address()
}

// signTransfer signs transaction i of a run (account i mod K, with nonce)
// and encodes it as a JSON-RPC request object whose id is i, so batch
// answers map straight back to it. It moves 1 unit to the next account
// (sink when there is one account), so every transaction writes two
// accounts, as a real transfer does.
func signTransfer(ks []keys.Signer, sink koinos.Address, i int32, nonce uint64, ci chainInfo, rcLimit uint64) ([]byte, koinos.Digest, error) {
	k := len(ks)
	a := int(i) % k
	to := sink
	if k > 1 {
		to = ks[(a+1)%k].Address()
	}
	tx, err := txbuilder.Transfer(ks[a], ci.token, to, 1, txbuilder.Header{ChainID: ci.chainID, Nonce: nonce, RcLimit: rcLimit})
	if err != nil {
		return nil, koinos.Digest{}, err
	}
	id, err := koinos.ParseMultihash(tx.Id)
	if err != nil {
		return nil, koinos.Digest{}, err
	}
	b := make([]byte, 0, 1024)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"method":"chain.submit_transaction","params":`...)
	b, err = kjson.Append(b, &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true})
	if err != nil {
		return nil, koinos.Digest{}, err
	}
	return append(b, '}'), id, nil
}
