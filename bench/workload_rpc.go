package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
)

// mintWindow is how many mint transactions the contract account has
// pending at most: the mempool reserves each one's rc_limit against its
// mana and holds a bounded number per account.
const mintWindow = 512

// deployWasmToken prepares a wasm-token session before any clock starts:
// it uploads Options.Contract to ContractKey's account and waits for the
// upload to be in a block (a mint checked before would find no contract),
// mints WasmTokenMint to every account and waits for the mints, checks
// two balances through chain.read_contract, then checks (without
// submitting it) one transfer, whose rc_used sizes the run's rc_limit.
// The runs then sign their transfers against the contract.
func (s *Session) deployWasmToken(ctx context.Context, maxOps uint32) error {
	start := time.Now()
	ck := ContractKey(s.opts.Seed)
	ca := ck.Address()
	pr := s.opts.Progress
	last, err := s.lastNonce(ctx, ca)
	if err != nil {
		return err
	}
	up, err := uploadTx(ck, s.opts.Contract, s.info.chainID, last+1)
	if err != nil {
		return fmt.Errorf("bench: upload transaction: %w", err)
	}
	if pr != nil {
		fmt.Fprintf(pr, "bench: uploading the token contract (%d bytes) to %s\n", len(s.opts.Contract), ca)
	}
	if err := s.submitSetup(ctx, up, "the upload of --contract"); err != nil {
		return err
	}
	if err := s.waitNonce(ctx, ca, last+1, "the upload"); err != nil {
		return err
	}
	addrs := make([]koinos.Address, len(s.keys))
	for i, k := range s.keys {
		addrs[i] = k.Address()
	}
	perTx := genesis.DefaultMaxOperations
	if maxOps > 0 {
		perTx = min(perTx, int(maxOps))
	}
	mints, err := mintTxs(ck, addrs, perTx, s.info.chainID, last+2)
	if err != nil {
		return fmt.Errorf("bench: mint transactions: %w", err)
	}
	if pr != nil {
		fmt.Fprintf(pr, "bench: minting %d accounts in %d transactions\n", len(addrs), len(mints))
	}
	for i, tx := range mints {
		if err := s.submitSetup(ctx, tx, fmt.Sprintf("mint transaction %d of %d", i+1, len(mints))); err != nil {
			return err
		}
		if (i+1)%mintWindow == 0 || i == len(mints)-1 {
			if err := s.waitNonce(ctx, ca, last+2+uint64(i), "the mints"); err != nil {
				return err
			}
		}
	}
	for _, a := range []koinos.Address{addrs[0], addrs[len(addrs)-1]} {
		bal, err := s.wasmBalance(ctx, ca, a)
		if err != nil {
			return err
		}
		if bal < WasmTokenMint {
			return fmt.Errorf("bench: after the mints %s holds %d of the token, want at least %d", a, bal, WasmTokenMint)
		}
	}
	probe, err := probeTransfer(s.keys, ca, s.info.chainID, s.next[0])
	if err != nil {
		return fmt.Errorf("bench: probe transfer: %w", err)
	}
	var resp chainrpc.SubmitTransactionResponse
	if err := s.client.Call(ctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: probe, Broadcast: false}, &resp); err != nil {
		return fmt.Errorf("bench: checking a WASM transfer: %w", err)
	}
	rec := resp.GetReceipt()
	if rec.GetReverted() || rec.GetRcUsed() == 0 {
		return fmt.Errorf("bench: a WASM transfer checked against the node reverts: %s", revertReason(rec))
	}
	if s.opts.RCLimit == 0 {
		s.opts.RCLimit = WasmRCLimit(rec.GetRcUsed())
	}
	s.info.token = ca
	s.workload = WorkloadInfo{Name: WorkloadWasmToken, Contract: ca.String(), ContractBytes: len(s.opts.Contract),
		ProbeRCUsed: rec.GetRcUsed(), ProbeCompute: rec.GetComputeBandwidthUsed(), SetupTxs: 1 + len(mints),
		SetupSeconds: round3(time.Since(start).Seconds())}
	return nil
}

// submitSetup submits a setup transaction and refuses a reverted one
// with the chain's reason (an upload of something that is not a valid
// contract reverts with the VM's).
func (s *Session) submitSetup(ctx context.Context, tx *protocol.Transaction, what string) error {
	var resp chainrpc.SubmitTransactionResponse
	if err := s.client.Call(ctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &resp); err != nil {
		return fmt.Errorf("bench: the node refused %s: %w", what, err)
	}
	if r := resp.GetReceipt(); r.GetReverted() {
		return fmt.Errorf("bench: %s reverted: %s", what, revertReason(r))
	}
	return nil
}

// lastNonce is an account's last used nonce, pending ones included.
func (s *Session) lastNonce(ctx context.Context, a koinos.Address) (uint64, error) {
	n, err := s.chainNonce(ctx, a)
	if err != nil {
		return 0, err
	}
	// Koinos answers a pending nonce only with pending transactions:
	// none is no error.
	var pr mempoolrpc.GetPendingNonceResponse
	if err := s.client.Call(ctx, "mempool.get_pending_nonce", &mempoolrpc.GetPendingNonceRequest{Payee: a.Bytes()}, &pr); err == nil && len(pr.GetNonce()) > 0 {
		if pn, err := koinos.DecodeNonce(pr.GetNonce()); err == nil {
			n = max(n, pn)
		}
	}
	return n, nil
}

// chainNonce is an account's last nonce in a block at the head.
func (s *Session) chainNonce(ctx context.Context, a koinos.Address) (uint64, error) {
	var r chainrpc.GetAccountNonceResponse
	if err := s.client.Call(ctx, "chain.get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: a.Bytes()}, &r); err != nil {
		return 0, fmt.Errorf("bench: chain.get_account_nonce %s: %w", a, err)
	}
	n, err := koinos.DecodeNonce(r.GetNonce())
	if err != nil {
		return 0, fmt.Errorf("bench: nonce of %s: %w", a, err)
	}
	return n, nil
}

// waitNonce waits until the account's transaction of nonce want is in a
// block at the head, or no progress was seen for a while.
func (s *Session) waitNonce(ctx context.Context, a koinos.Address, want uint64, what string) error {
	stall := max(30*time.Second, 30*time.Duration(s.info.intervalMs)*time.Millisecond)
	poll := max(10*time.Millisecond, time.Duration(s.info.intervalMs)*time.Millisecond/4)
	last, lastChange := uint64(0), time.Now()
	for {
		n, err := s.chainNonce(ctx, a)
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > stall {
			return fmt.Errorf("bench: %s did not reach a block: %s's nonce is %d after %v without progress, want %d", what, a, n, stall, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// wasmBalance reads owner's balance of the token through
// chain.read_contract.
func (s *Session) wasmBalance(ctx context.Context, contract, owner koinos.Address) (uint64, error) {
	var r chainrpc.ReadContractResponse
	req := &chainrpc.ReadContractRequest{ContractId: contract.Bytes(), EntryPoint: wasmTokenBalanceOf, Args: balanceOfArgs(owner)}
	if err := s.client.Call(ctx, "chain.read_contract", req, &r); err != nil {
		return 0, fmt.Errorf("bench: balance_of %s: %w", owner, err)
	}
	return decodeBalance(r.GetResult())
}

// TokenBalances reads every account's balance of the token the session's
// transfers move (the WASM token's balance_of through
// chain.read_contract); it is for the wasm-token workload only.
func (s *Session) TokenBalances(ctx context.Context) ([]uint64, error) {
	if s.workload.Name != WorkloadWasmToken {
		return nil, errors.New("bench: TokenBalances reads the WASM token; this session transfers the native one")
	}
	out := make([]uint64, len(s.keys))
	for i, k := range s.keys {
		b, err := s.wasmBalance(ctx, s.info.token, k.Address())
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
