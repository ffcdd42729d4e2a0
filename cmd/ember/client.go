package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/node/keyfile"
	emberrpc "github.com/emberchain/ember/proto/ember/rpc"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	p2prpc "github.com/emberchain/ember/proto/koinos/rpc/p2p"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	"github.com/emberchain/ember/proto/tokenabi"
	"github.com/emberchain/ember/rpcgw/client"
)

func b64url(b []byte) string { return base64.URLEncoding.EncodeToString(b) }

func defaultRPC() string {
	if u := os.Getenv("EMBER_RPC"); u != "" {
		return u
	}
	return "http://127.0.0.1:8080/"
}

func cmdKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: ember keys new --out FILE [--scheme secp256k1|ed25519] | ember keys show FILE")
		return errUsage
	}
	switch args[0] {
	case "new":
		fs := newFlags("keys new", "keys new --out FILE [--scheme secp256k1|ed25519]", stderr)
		out := fs.String("out", "", "file to write the key to (mode 0600)")
		scheme := fs.String("scheme", "secp256k1", "secp256k1 (Koinos wallets, koilib) or ed25519 (Ember's fast lane)")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *out == "" {
			fmt.Fprintln(stderr, "--out is required")
			fs.Usage()
			return errUsage
		}
		s, err := keys.ParseScheme(*scheme)
		if err != nil {
			return err
		}
		k, err := keys.Generate(s)
		if err != nil {
			return err
		}
		if err := keyfile.Write(*out, k, false); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", k.Address())
		fmt.Fprintf(stderr, "wrote %s key to %s\n", s, *out)
		return nil
	case "show":
		fs := newFlags("keys show", "keys show FILE", stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return errUsage
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		k, err := keyfile.Read(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", k.Address())
		return nil
	}
	fmt.Fprintf(stderr, "unknown keys command %q (new, show)\n", args[0])
	return errUsage
}

// chainInfo fetches what a client needs to build transactions.
func chainInfo(ctx context.Context, c *client.Client) (*emberrpc.GetChainInfoResponse, error) {
	var info emberrpc.GetChainInfoResponse
	if err := c.Call(ctx, "ember.get_chain_info", &emberrpc.GetChainInfoRequest{}, &info); err != nil {
		return nil, err
	}
	if info.Parameters.GetToken() == nil {
		return nil, errors.New("the node did not return chain parameters")
	}
	return &info, nil
}

// parseAmount reads a decimal token amount ("12.5") into base units.
func parseAmount(s string, decimals uint32) (uint64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 || strings.ContainsAny(s, "eE/") {
		return 0, fmt.Errorf("amount %q is not a non-negative decimal number", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)))
	if !r.IsInt() {
		return 0, fmt.Errorf("amount %q has more than %d decimal places", s, decimals)
	}
	n := r.Num()
	if !n.IsUint64() {
		return 0, fmt.Errorf("amount %q is too large", s)
	}
	return n.Uint64(), nil
}

func formatAmount(v uint64, decimals uint32) string {
	s := new(big.Rat).SetFrac(new(big.Int).SetUint64(v), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)).FloatString(int(decimals))
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func cmdTx(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "transfer" {
		fmt.Fprintln(stderr, "Usage: ember tx transfer --key FILE --to ADDR --amount N [--rpc URL] [--wait]")
		return errUsage
	}
	fs := newFlags("tx transfer", "tx transfer --key FILE --to ADDR --amount N [--rpc URL] [--wait]", stderr)
	keyPath := fs.String("key", "", "key file of the sender (see ember keys new)")
	to := fs.String("to", "", "recipient address (base58)")
	amount := fs.String("amount", "", "amount in tokens, e.g. 12.5 (the token's decimals apply)")
	rpcURL := fs.String("rpc", defaultRPC(), "JSON-RPC endpoint of a node ($EMBER_RPC)")
	rcLimit := fs.Uint64("rc-limit", 0, "most mana the transaction may use (default: the sender's mana, at most 1 token's worth)")
	wait := fs.Bool("wait", false, "wait until the transfer is in a block")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait with --wait")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *keyPath == "" || *to == "" || *amount == "" {
		fmt.Fprintln(stderr, "--key, --to and --amount are required")
		fs.Usage()
		return errUsage
	}
	key, err := keyfile.Read(*keyPath)
	if err != nil {
		return err
	}
	dest, err := koinos.DecodeAddress(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	c, err := client.New(*rpcURL)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+10*time.Second)
	defer cancel()
	info, err := chainInfo(ctx, c)
	if err != nil {
		return fmt.Errorf("ask %s for the chain: %w", *rpcURL, err)
	}
	value, err := parseAmount(*amount, info.Parameters.Token.Decimals)
	if err != nil {
		return err
	}
	token, err := koinos.ParseAddress(info.Parameters.Token.ContractId)
	if err != nil {
		return err
	}
	var nonce chainrpc.GetAccountNonceResponse
	if err := c.Call(ctx, "chain.get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: key.Address().Bytes()}, &nonce); err != nil {
		return err
	}
	n, err := koinos.DecodeNonce(nonce.Nonce)
	if err != nil {
		return fmt.Errorf("node returned a bad nonce: %w", err)
	}
	limit := *rcLimit
	if limit == 0 {
		var rc chainrpc.GetAccountRcResponse
		if err := c.Call(ctx, "chain.get_account_rc", &chainrpc.GetAccountRcRequest{Account: key.Address().Bytes()}, &rc); err != nil {
			return err
		}
		limit = min(rc.Rc, pow10(info.Parameters.Token.Decimals))
		if limit == 0 {
			return fmt.Errorf("account %s has no mana to pay for the transaction", key.Address())
		}
	}
	tx, err := txbuilder.Transfer(key, token, dest, value, txbuilder.Header{ChainID: info.ChainId, Nonce: n + 1, RcLimit: limit})
	if err != nil {
		return err
	}
	var sub chainrpc.SubmitTransactionResponse
	if err := c.Call(ctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &sub); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	id := "0x" + fmt.Sprintf("%x", tx.Id)
	fmt.Fprintf(stdout, "transaction %s\n", id)
	if sub.Receipt.GetReverted() {
		fmt.Fprintf(stdout, "warning: the node expects it to revert: %s\n", strings.Join(sub.Receipt.Logs, "; "))
	}
	if !*wait {
		return nil
	}
	height, blockID, err := waitIncluded(ctx, c, tx.Id, *timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "included in block %d (0x%x)\n", height, blockID)
	return nil
}

func pow10(n uint32) uint64 {
	v := uint64(1)
	for i := uint32(0); i < n && v < 1e18; i++ {
		v *= 10
	}
	return v
}

// waitIncluded polls the transaction store until the transaction is in a
// block on the head chain, as koilib's provider.wait does.
func waitIncluded(ctx context.Context, c *client.Client, id []byte, timeout time.Duration) (uint64, []byte, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var got txstorerpc.GetTransactionsByIdResponse
		if err := c.Call(ctx, "transaction_store.get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: [][]byte{id}}, &got); err != nil {
			return 0, nil, err
		}
		if len(got.Transactions) == 1 && len(got.Transactions[0].ContainingBlocks) > 0 {
			var blocks blockstorerpc.GetBlocksByIdResponse
			if err := c.Call(ctx, "block_store.get_blocks_by_id", &blockstorerpc.GetBlocksByIdRequest{BlockIds: got.Transactions[0].ContainingBlocks}, &blocks); err != nil {
				return 0, nil, err
			}
			var head chainrpc.GetHeadInfoResponse
			if err := c.Call(ctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &head); err != nil {
				return 0, nil, err
			}
			for _, it := range blocks.BlockItems {
				var onHead blockstorerpc.GetBlocksByHeightResponse
				err := c.Call(ctx, "block_store.get_blocks_by_height", &blockstorerpc.GetBlocksByHeightRequest{
					HeadBlockId: head.HeadTopology.Id, AncestorStartHeight: it.BlockHeight, NumBlocks: 1,
				}, &onHead)
				if err == nil && len(onHead.BlockItems) == 1 && string(onHead.BlockItems[0].BlockId) == string(it.BlockId) {
					return it.BlockHeight, it.BlockId, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, nil, fmt.Errorf("transaction 0x%x not in a block after %v", id, timeout)
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [--rpc URL] [--json]", stderr)
	rpcURL := fs.String("rpc", defaultRPC(), "JSON-RPC endpoint of a node ($EMBER_RPC)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := client.New(*rpcURL)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := chainInfo(ctx, c)
	if err != nil {
		return fmt.Errorf("ask %s: %w", *rpcURL, err)
	}
	var head chainrpc.GetHeadInfoResponse
	if err := c.Call(ctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &head); err != nil {
		return err
	}
	var gossip p2prpc.GetGossipStatusResponse
	if err := c.Call(ctx, "p2p.get_gossip_status", &p2prpc.GetGossipStatusRequest{}, &gossip); err != nil {
		return err
	}
	token, _ := koinos.ParseAddress(info.Parameters.Token.ContractId)
	var supply tokenabi.Uint64
	var rc chainrpc.ReadContractResponse
	if err := c.Call(ctx, "chain.read_contract", &chainrpc.ReadContractRequest{ContractId: token.Bytes(), EntryPoint: contracts.EntryTotalSupply}, &rc); err == nil {
		_ = supply.UnmarshalVT(rc.Result)
	}
	if *asJSON {
		out := struct {
			ChainID       string `json:"chain_id"`
			ChainName     string `json:"chain_name"`
			HeadHeight    uint64 `json:"head_height,string"`
			HeadID        string `json:"head_id"`
			HeadTime      uint64 `json:"head_block_time,string"`
			LIB           uint64 `json:"last_irreversible_block,string"`
			Token         string `json:"token_contract_id"`
			TokenSymbol   string `json:"token_symbol"`
			TotalSupply   uint64 `json:"total_supply,string"`
			IntervalMs    uint64 `json:"block_interval_ms,string"`
			ProducerCount int    `json:"producers"`
			Gossip        bool   `json:"gossip"`
		}{
			b64url(info.ChainId), info.Parameters.ChainName, head.HeadTopology.GetHeight(), fmt.Sprintf("0x%x", head.HeadTopology.GetId()),
			head.HeadBlockTime, head.LastIrreversibleBlock, token.String(), info.Parameters.Token.Symbol, supply.Value,
			info.Parameters.BlockIntervalMs, len(info.Parameters.Producers), gossip.Enabled,
		}
		b, _ := jsonIndent(out)
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintf(stdout, "chain:            %s (id %s)\n", info.Parameters.ChainName, b64url(info.ChainId))
	fmt.Fprintf(stdout, "head:             %d  0x%x  (%s)\n", head.HeadTopology.GetHeight(), head.HeadTopology.GetId(), time.UnixMilli(int64(head.HeadBlockTime)).UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "irreversible:     %d\n", head.LastIrreversibleBlock)
	fmt.Fprintf(stdout, "token contract:   %s (%s, total supply %s)\n", token, info.Parameters.Token.Symbol, formatAmount(supply.Value, info.Parameters.Token.Decimals))
	fmt.Fprintf(stdout, "block interval:   %d ms, %d producer(s)\n", info.Parameters.BlockIntervalMs, len(info.Parameters.Producers))
	g := "off (no peer, or catching up)"
	if gossip.Enabled {
		g = "on"
	}
	fmt.Fprintf(stdout, "gossip:           %s\n", g)
	return nil
}

func jsonIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
