package bench

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Workloads: what each measured transaction does.
const (
	// WorkloadNative transfers the chain's native token (Go code in
	// engine/contracts). The default.
	WorkloadNative = "native"
	// WorkloadWasmToken transfers a KCS-1 token contract uploaded before
	// the clock starts (Options.Contract, the wasm of
	// internal/sdkas/testdata/assembly/token.ts: make token-wasm), run by
	// engine/vm.
	WorkloadWasmToken = "wasm-token"
)

// Entry points of the KCS-1 token contract (the first four bytes of the
// SHA-256 of the method's name, as Koinos's SDK derives them; the bench's
// tests check them against internal/sdkas, which the bench binary does
// not import). Transfer is the native token's entry point too.
const (
	wasmTokenTransfer  uint32 = 0x27f576ca
	wasmTokenMint      uint32 = 0xdc6f17bb
	wasmTokenBalanceOf uint32 = 0x5c721497
)

// Deployment of the WASM token.
const (
	// WasmTokenMint is what each account is minted: far more than a run
	// can transfer away (one unit per transfer), and 10^6 accounts of it
	// stay far below the 2^64 supply.
	WasmTokenMint = 1_000_000_000_000
	// setupRCLimit is the rc_limit of the upload and mint transactions:
	// max_contract_compute (10^8) at compute_cost 10, so a transaction is
	// never cut short for rc; the contract account's mana (AccountFunds)
	// pays thousands of them.
	setupRCLimit = 1_000_000_000
	// probeRCLimit is the rc_limit of the transfer whose receipt sizes the
	// run's rc_limit: a hundred times what the SDK token's transfer uses.
	probeRCLimit = 500_000_000
)

// WasmRCLimit is the rc_limit of a run's WASM transfers given what one
// used (rc_used of a checked transfer's receipt): half as much again.
// A transfer's compute varies by a few units with the size of the
// balances it rewrites, and its disk by a byte when a balance's encoding
// grows; the margin covers both without letting a runaway transfer
// spend ten times its due, as DefaultRCLimit would.
func WasmRCLimit(rcUsed uint64) uint64 { return rcUsed + rcUsed/2 }

// ContractKey is the account the bench's WASM token is uploaded to (its
// contract id is this key's address): derived from the seed like the
// accounts, and funded by the bench's genesis (and bench init's) so that
// it pays for its own upload and mints.
func ContractKey(seed string) keys.Signer {
	if seed == "" {
		seed = DefaultSeed
	}
	return deriveKey(keys.SchemeEd25519, "ember-bench/contract/"+seed)
}

// checkWorkload refuses a workload that cannot run: an unknown name, a
// WASM token without bytecode, bytecode without the WASM token.
func checkWorkload(name string, contract []byte) error {
	switch name {
	case "", WorkloadNative:
		if len(contract) > 0 {
			return errors.New("bench: --contract is only for --workload wasm-token")
		}
	case WorkloadWasmToken:
		if len(contract) == 0 {
			return errors.New("bench: --workload wasm-token needs --contract FILE, the token contract's wasm (make token-wasm writes bin/token.wasm)")
		}
	default:
		return fmt.Errorf("bench: unknown --workload %q (want %s or %s)", name, WorkloadNative, WorkloadWasmToken)
	}
	return nil
}

// nativeOnly refuses the wasm-token workload in the modes that do not
// run it: suite's targets and net's and sync's yardsticks are the native
// token's, and sync builds its chain of native transfers itself.
func nativeOnly(mode, workload string) error {
	if workload == "" || workload == WorkloadNative {
		return nil
	}
	return fmt.Errorf("bench: the %s mode runs the native token only; --workload %s runs with bench rpc, sweep, soak and engine", mode, workload)
}

// genesisAccounts are the accounts a bench chain funds: the senders, and
// for the WASM token its contract account.
func genesisAccounts(ks []keys.Signer, workload, seed string) []keys.Signer {
	if workload != WorkloadWasmToken {
		return ks
	}
	return append(append(make([]keys.Signer, 0, len(ks)+1), ks...), ContractKey(seed))
}

// WorkloadInfo says what the measured transactions did; reports carry it.
type WorkloadInfo struct {
	Name string `json:"name"`
	// Contract is the WASM token's contract id (its address).
	Contract string `json:"contract,omitempty"`
	// ContractBytes is the size of its bytecode.
	ContractBytes int `json:"contract_bytes,omitempty"`
	// RCLimit is each measured transaction's rc_limit.
	RCLimit uint64 `json:"rc_limit"`
	// ProbeRCUsed and ProbeCompute are the receipt of one WASM transfer
	// checked against the chain after the mints (not included), from
	// which RCLimit was set.
	ProbeRCUsed  uint64 `json:"probe_rc_used,omitempty"`
	ProbeCompute uint64 `json:"probe_compute,omitempty"`
	// SetupTxs are the upload and mint transactions, SetupSeconds the
	// time from the upload's submission to the last mint's inclusion
	// (before the clock).
	SetupTxs     int     `json:"setup_txs,omitempty"`
	SetupSeconds float64 `json:"setup_s,omitempty"`
}

// String is the workload as the tables print it.
func (w WorkloadInfo) String() string {
	if w.Name != WorkloadWasmToken {
		return "native token transfers"
	}
	s := fmt.Sprintf("WASM KCS-1 token transfers (contract %s, %d bytes; rc_limit %d", w.Contract, w.ContractBytes, w.RCLimit)
	if w.ProbeRCUsed > 0 {
		s += fmt.Sprintf(" from a probe's rc_used %d, compute %d", w.ProbeRCUsed, w.ProbeCompute)
	}
	return s + ")"
}

// uploadTx uploads code to the contract account, which pays and signs.
func uploadTx(contract keys.Signer, code []byte, chainID []byte, nonce uint64) (*protocol.Transaction, error) {
	op := &protocol.Operation{Op: &protocol.Operation_UploadContract{UploadContract: &protocol.UploadContractOperation{
		ContractId: contract.Address().Bytes(), Bytecode: code,
	}}}
	tx, err := txbuilder.Build(txbuilder.Header{ChainID: chainID, Nonce: nonce, RcLimit: setupRCLimit, Payer: contract.Address()}, op)
	if err != nil {
		return nil, err
	}
	txbuilder.Sign(tx, contract)
	return tx, nil
}

// mintTxs mints WasmTokenMint to each of to, perTx mints to a
// transaction, paid and signed by the contract account (the token's mint
// authority), with nonces from firstNonce on.
func mintTxs(contract keys.Signer, to []koinos.Address, perTx int, chainID []byte, firstNonce uint64) ([]*protocol.Transaction, error) {
	perTx = max(perTx, 1)
	out := make([]*protocol.Transaction, 0, (len(to)+perTx-1)/perTx)
	for from := 0; from < len(to); from += perTx {
		ops := make([]*protocol.Operation, 0, perTx)
		for _, a := range to[from:min(from+perTx, len(to))] {
			args, err := (&tokenpb.MintArguments{To: a.Bytes(), Value: WasmTokenMint}).MarshalVT()
			if err != nil {
				return nil, err
			}
			ops = append(ops, txbuilder.CallOp(contract.Address(), wasmTokenMint, args))
		}
		tx, err := txbuilder.Build(txbuilder.Header{ChainID: chainID, Nonce: firstNonce + uint64(len(out)), RcLimit: setupRCLimit, Payer: contract.Address()}, ops...)
		if err != nil {
			return nil, err
		}
		txbuilder.Sign(tx, contract)
		out = append(out, tx)
	}
	return out, nil
}

// probeTransfer is account ks[0]'s transfer of one unit to the next
// account (the sink for one account), as a run's first would be, with a
// generous rc_limit: its receipt says what a WASM transfer costs.
func probeTransfer(ks []keys.Signer, token koinos.Address, chainID []byte, nonce uint64) (*protocol.Transaction, error) {
	to := sinkAddress()
	if len(ks) > 1 {
		to = ks[1].Address()
	}
	return txbuilder.Transfer(ks[0], token, to, 1, txbuilder.Header{ChainID: chainID, Nonce: nonce, RcLimit: probeRCLimit})
}

// TokenBalancesAfter is each of k accounts' balance of the WASM token
// after runs of n[0], n[1], … transfers: transaction i of a run moves one
// unit from account i mod k to the next (to the sink, whose balance is
// not returned, when k is 1). A run whose length is not a multiple of k
// leaves the balances moved.
func TokenBalancesAfter(k int, runs ...int) []uint64 {
	bal := make([]uint64, k)
	for a := range bal {
		bal[a] = WasmTokenMint
	}
	for _, n := range runs {
		for i := 0; i < n; i++ {
			a := i % k
			bal[a]--
			if k > 1 {
				bal[(a+1)%k]++
			}
		}
	}
	return bal
}

// balanceOfArgs is balance_of's argument for owner.
func balanceOfArgs(owner koinos.Address) []byte {
	b, _ := (&tokenpb.BalanceOfArguments{Owner: owner.Bytes()}).MarshalVT()
	return b
}

// decodeBalance reads balance_of's result (empty for a zero balance:
// proto3 writes no field for 0).
func decodeBalance(b []byte) (uint64, error) {
	var r tokenpb.BalanceOfResult
	if err := r.UnmarshalVT(b); err != nil {
		return 0, fmt.Errorf("bench: balance_of result does not decode: %w", err)
	}
	return r.Value, nil
}

// revertReason is a reverted receipt's reason, its logs joined.
func revertReason(r *protocol.TransactionReceipt) string {
	if len(r.GetLogs()) == 0 {
		return "reverted, no reason logged"
	}
	return strings.Join(r.GetLogs(), "; ")
}
