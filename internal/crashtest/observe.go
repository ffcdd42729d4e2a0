package crashtest

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	emberrpc "github.com/emberchain/ember/proto/ember/rpc"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	ahrpc "github.com/emberchain/ember/proto/koinos/rpc/account_history"
	blockrpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	"github.com/emberchain/ember/rpcgw/client"
)

// What the harness sees over JSON-RPC: the load it sends, the blocks the
// node reports irreversible, and the checks run on a restarted node.

func addrString(b []byte) string { return fmt.Sprintf("0x%x", b) }

// slotOf is the production slot of a block's timestamp.
func (h *harness) slotOf(height, ts uint64) (uint64, error) {
	if ts < h.genesisMs {
		return 0, fmt.Errorf("crashtest: block %d has timestamp %d, before genesis (%d)", height, ts, h.genesisMs)
	}
	return (ts - h.genesisMs) / h.slotMs, nil
}

func (h *harness) headInfo(ctx context.Context) (*chainrpc.GetHeadInfoResponse, error) {
	var r chainrpc.GetHeadInfoResponse
	if err := h.rpc.Call(ctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
		return nil, err
	}
	if r.HeadTopology == nil {
		return nil, errors.New("crashtest: chain.get_head_info without head_topology")
	}
	return &r, nil
}

func (h *harness) loadChainInfo(ctx context.Context) error {
	var info emberrpc.GetChainInfoResponse
	if err := h.rpc.Call(ctx, "ember.get_chain_info", &emberrpc.GetChainInfoRequest{}, &info); err != nil {
		return fmt.Errorf("crashtest: ember.get_chain_info: %w", err)
	}
	if info.Parameters.GetToken() == nil {
		return errors.New("crashtest: the node returned no token parameters")
	}
	tok, err := koinos.ParseAddress(info.Parameters.Token.ContractId)
	if err != nil {
		return fmt.Errorf("crashtest: token address: %w", err)
	}
	h.token, h.chainID = tok, info.ChainId
	return nil
}

// send is one sender's load: transfers of 1 to the next account, in nonce
// order, at its share of the rate. A refusal for load is retried with the
// same transaction; any other failure (the node was killed, or lost the
// pool's transactions with it) makes it read its nonce from the chain
// again once the node answers.
func (h *harness) send(ctx context.Context, i int) {
	from, to := h.accounts[i], h.accounts[(i+1)%len(h.accounts)]
	every := time.Duration(float64(time.Second) * float64(len(h.accounts)) / h.cfg.TxRate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var nonce uint64
	known := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !known {
			var r chainrpc.GetAccountNonceResponse
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := h.rpc.Call(cctx, "chain.get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: from.Address().Bytes()}, &r)
			cancel()
			if err != nil {
				continue
			}
			n, err := koinos.DecodeNonce(r.Nonce)
			if err != nil {
				continue
			}
			nonce, known = n, true
		}
		tx, err := txbuilder.Transfer(from, h.token, to.Address(), 1, txbuilder.Header{ChainID: h.chainID, Nonce: nonce + 1, RcLimit: 10_000_000})
		if err != nil {
			h.fail(fmt.Errorf("crashtest: build a transfer: %w", err))
			return
		}
		id := fmt.Sprintf("0x%x", tx.Id)
		h.mu.Lock()
		h.txs[id] = txInfo{from: i, to: (i + 1) % len(h.accounts)}
		h.submitted++
		h.mu.Unlock()
		for {
			var r chainrpc.SubmitTransactionResponse
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err = h.rpc.Call(cctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &r)
			cancel()
			if !refusedForLoad(err) {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err != nil {
			known = false
			continue
		}
		nonce++
		h.mu.Lock()
		h.acked++
		h.mu.Unlock()
	}
}

// refusedForLoad reports whether the node refused a transaction for load
// (the gateway's queue, the account's pending limit): the same one may be
// sent again.
func refusedForLoad(err error) bool {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return false
	}
	code, ok := ce.ChainCode()
	return ce.Temporary() || ok && code == chainpb.ErrorCode_pending_transaction_limit_exceeded
}

// observe polls the node twice a block interval and records what it
// reports irreversible, until ctx ends. Failures while the node is down
// are expected and ignored.
func (h *harness) observe(ctx context.Context) {
	t := time.NewTicker(h.cfg.BlockInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.obsMu.Lock()
		err := h.observeOnce(ctx)
		h.obsMu.Unlock()
		if invariantOf(err) != "" {
			h.fail(err)
		}
	}
}

// observeOnce reads the head, the blocks that became irreversible since
// the last call, and the event log's end.
func (h *harness) observeOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	hi, err := h.headInfo(cctx)
	if err != nil {
		return err
	}
	if err := h.ledger.ReportLIB(hi.HeadTopology.GetHeight(), hi.LastIrreversibleBlock); err != nil {
		return err
	}
	if err := h.recordIrreversible(cctx, hi.HeadTopology.GetId(), hi.LastIrreversibleBlock); err != nil {
		return err
	}
	if next, ok := h.scrapeNextSeq(cctx); ok {
		h.maxNextSeq = max(h.maxNextSeq, next)
	}
	return nil
}

// recordIrreversible fetches the blocks above the ledger's height up to
// lib, on the chain of head, and records them.
func (h *harness) recordIrreversible(ctx context.Context, head []byte, lib uint64) error {
	for from := h.ledger.Height() + 1; from <= lib; {
		items, err := h.blocksByHeight(ctx, head, from, min(lib-from+1, 200), true)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return fmt.Errorf("crashtest: no block at height %d below the last irreversible block %d", from, lib)
		}
		for _, b := range items {
			if err := h.ledger.Irreversible(b); err != nil {
				return err
			}
		}
		from += uint64(len(items))
	}
	return nil
}

// blocksByHeight reads n blocks from height from on the chain ending at
// head.
func (h *harness) blocksByHeight(ctx context.Context, head []byte, from, n uint64, bodies bool) ([]Block, error) {
	var r blockrpc.GetBlocksByHeightResponse
	err := h.rpc.Call(ctx, "block_store.get_blocks_by_height", &blockrpc.GetBlocksByHeightRequest{
		HeadBlockId: head, AncestorStartHeight: from, NumBlocks: uint32(n), ReturnBlock: true,
	}, &r)
	if err != nil {
		return nil, err
	}
	out := make([]Block, 0, len(r.BlockItems))
	for i, it := range r.BlockItems {
		if it.BlockHeight != from+uint64(i) {
			return nil, fmt.Errorf("crashtest: get_blocks_by_height from %d returned height %d at position %d", from, it.BlockHeight, i)
		}
		hdr := it.Block.GetHeader()
		slot, err := h.slotOf(it.BlockHeight, hdr.GetTimestamp())
		if err != nil {
			return nil, err
		}
		b := Block{Height: it.BlockHeight, ID: addrString(it.BlockId), Signer: addrString(hdr.GetSigner()), Slot: slot}
		if bodies {
			for _, tx := range it.Block.GetTransactions() {
				b.Txs = append(b.Txs, addrString(tx.GetId()))
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// scrapeNextSeq reads ember_eventlog_next_seq from the admin listener.
func (h *harness) scrapeNextSeq(ctx context.Context) (uint64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.admin+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ember_eventlog_next_seq "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return uint64(f), err == nil
		}
	}
	return 0, false
}

// checkServing runs the checks on a node just restarted after a kill:
// head and LIB, the sign guard on the first new block, every block
// reported irreversible, the transactions of the blocks since the last
// check (and a sample of older ones), and the account history since the
// last check.
func (h *harness) checkServing(ctx context.Context, snap *storeSnapshot) {
	cctx, cancel := context.WithTimeout(ctx, h.cfg.RestartTimeout)
	defer cancel()
	hi, err := h.headInfo(cctx)
	if err != nil {
		h.fail(fmt.Errorf("crashtest: head after restart: %w", err))
		return
	}
	if err := h.ledger.ReportLIB(hi.HeadTopology.GetHeight(), hi.LastIrreversibleBlock); err != nil {
		h.fail(err)
	}
	if snap != nil {
		h.checkGuard(cctx, snap)
	}
	h.checkBlocksKept(cctx)
	h.checkTxs(cctx, false)
	h.checkHistory(cctx)
}

// checkGuard waits for the first block the restarted node produces above
// the killed store's head and judges the sign guard on it.
func (h *harness) checkGuard(ctx context.Context, snap *storeSnapshot) {
	g := snap.guard
	for {
		hi, err := h.headInfo(ctx)
		if err == nil && hi.HeadTopology.GetHeight() > snap.guard.StoredHead.Height {
			bs, err := h.blocksByHeight(ctx, hi.HeadTopology.GetId(), snap.guard.StoredHead.Height+1, 1, false)
			if err == nil && len(bs) == 1 {
				g.FirstNew = bs[0]
				if err := h.ledger.Seen(bs[0]); err != nil {
					h.fail(err)
				}
				break
			}
		}
		select {
		case <-ctx.Done():
			h.fail(violation(InvRestart, "the restarted node produced no block above %d", snap.guard.StoredHead.Height))
			return
		case <-time.After(h.cfg.BlockInterval / 4):
		}
	}
	h.sum.GuardChecks++
	if err := CheckSignGuard(g); err != nil {
		h.fail(err)
	}
}

// checkBlocksKept reads the id at every height reported irreversible.
func (h *harness) checkBlocksKept(ctx context.Context) {
	top := h.ledger.Height()
	hi, err := h.headInfo(ctx)
	if err != nil {
		h.fail(fmt.Errorf("crashtest: %w", err))
		return
	}
	idAt := make(map[uint64]string, top)
	for from := uint64(1); from <= top; {
		bs, err := h.blocksByHeight(ctx, hi.HeadTopology.GetId(), from, min(top-from+1, 1000), false)
		if err != nil {
			h.fail(fmt.Errorf("crashtest: %w", err))
			return
		}
		if len(bs) == 0 {
			break // the rest is missing: CheckBlocksKept says so
		}
		for _, b := range bs {
			idAt[b.Height] = b.ID
		}
		from += uint64(len(bs))
	}
	if err := CheckBlocksKept(h.ledger.Blocks(1, top), idAt); err != nil {
		h.fail(err)
	}
	h.sum.IrreversibleBlocks = top
}

// checkTxs looks up the transactions of the irreversible blocks not
// checked yet, and up to 200 older ones at random (all with full).
func (h *harness) checkTxs(ctx context.Context, full bool) {
	top := h.ledger.Height()
	want := map[string]string{}
	var older []string
	olderBlock := map[string]string{}
	for _, b := range h.ledger.Blocks(1, top) {
		for _, tx := range b.Txs {
			if full || b.Height > h.txsCheckedUpTo {
				want[tx] = b.ID
			} else {
				older = append(older, tx)
				olderBlock[tx] = b.ID
			}
		}
	}
	for range min(200, len(older)) {
		tx := older[h.rng.IntN(len(older))]
		want[tx] = olderBlock[tx]
	}
	ids := make([][]byte, 0, len(want))
	for tx := range want {
		d, err := parseHex(tx)
		if err != nil {
			h.fail(fmt.Errorf("crashtest: %w", err))
			return
		}
		ids = append(ids, d)
	}
	found := map[string][]string{}
	for start := 0; start < len(ids); start += 500 {
		var r txstorerpc.GetTransactionsByIdResponse
		err := h.rpc.Call(ctx, "transaction_store.get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: ids[start:min(start+500, len(ids))]}, &r)
		if err != nil {
			h.fail(fmt.Errorf("crashtest: transaction_store.get_transactions_by_id: %w", err))
			return
		}
		for _, it := range r.Transactions {
			id := addrString(it.GetTransaction().GetId())
			for _, b := range it.ContainingBlocks {
				found[id] = append(found[id], addrString(b))
			}
		}
	}
	if err := CheckTxsKept(want, found); err != nil {
		h.fail(err)
	}
	h.sum.TxLookups += len(want)
	h.txsCheckedUpTo = top
	n := 0
	for _, b := range h.ledger.Blocks(1, top) {
		n += len(b.Txs)
	}
	h.sum.TxsIrreversible = n
}

// checkHistory compares each sender's account history (irreversible
// blocks only) with the transfers from and to it in the irreversible
// blocks, from a few entries before where the last check stopped.
func (h *harness) checkHistory(ctx context.Context) {
	top := h.ledger.Height()
	blocks := h.ledger.Blocks(1, top)
	want := make([][]string, len(h.accounts))
	h.mu.Lock()
	for _, b := range blocks {
		for _, tx := range b.Txs {
			ti, ok := h.txs[tx]
			if !ok {
				h.mu.Unlock()
				h.fail(violation(InvTxsKept, "block %d holds transaction %s, which the load never built", b.Height, tx))
				return
			}
			want[ti.from] = append(want[ti.from], tx)
			want[ti.to] = append(want[ti.to], tx)
		}
	}
	h.mu.Unlock()
	for a, acct := range h.accounts {
		// Overlap the last check a little: an entry rewritten across the
		// crash shows there.
		from := max(0, h.historyCheckedUntil[a]-3)
		var got []HistoryEntry
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < len(want[a])-from {
			seq := uint64(from + len(got))
			var r ahrpc.GetAccountHistoryResponse
			err := h.rpc.Call(ctx, "account_history.get_account_history", &ahrpc.GetAccountHistoryRequest{
				Address: acct.Address().Bytes(), SeqNum: &seq, Limit: 500, Ascending: true, Irreversible: true,
			}, &r)
			if err != nil {
				h.fail(fmt.Errorf("crashtest: account_history.get_account_history: %w", err))
				return
			}
			for _, e := range r.Values {
				got = append(got, HistoryEntry{Seq: e.SeqNum, TxID: addrString(e.GetTrx().GetTransaction().GetId())})
			}
			if len(r.Values) == 0 {
				if time.Now().After(deadline) {
					break // CheckHistory reports the shortfall
				}
				time.Sleep(100 * time.Millisecond) // the indexer may be behind
			}
		}
		if err := CheckHistory(fmt.Sprintf("account %d (%s)", a, acct.Address()), uint64(from), want[a][from:], got); err != nil {
			h.fail(err)
			continue
		}
		h.sum.HistoryEntries += len(want[a]) - from
		h.historyCheckedUntil[a] = len(want[a])
	}
}

// final waits for the load's last transactions to settle and checks
// everything once more, in full.
func (h *harness) final(ctx context.Context) error {
	time.Sleep(4 * h.cfg.BlockInterval)
	cctx, cancel := context.WithTimeout(ctx, h.cfg.RestartTimeout)
	defer cancel()
	hi, err := h.headInfo(cctx)
	if err != nil {
		return fmt.Errorf("crashtest: head at the end: %w", err)
	}
	for h.ledger.Height() < hi.LastIrreversibleBlock {
		select {
		case <-cctx.Done():
			return fmt.Errorf("crashtest: the observer did not reach block %d", hi.LastIrreversibleBlock)
		case <-time.After(h.cfg.BlockInterval / 2):
		}
	}
	h.checkBlocksKept(cctx)
	h.checkTxs(cctx, true)
	h.historyCheckedUntil = map[int]int{}
	h.checkHistory(cctx)
	h.mu.Lock()
	h.sum.TxsSubmitted, h.sum.TxsAcked = h.submitted, h.acked
	h.mu.Unlock()
	return nil
}

func parseHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return nil, fmt.Errorf("crashtest: bad hex %q", s)
	}
	return b, nil
}
