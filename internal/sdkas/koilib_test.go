package sdkas

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
)

// TestTokenABIKoilib hands the committed token ABI to koilib 9.1.1 (the
// copy node's tests install) and checks what a wallet would send: each
// method becomes a function, and the arguments koilib serializes with the
// ABI's types are the bytes Go's koinos.contracts.token messages give, at
// the contract's entry points; a result decodes too.
func TestTokenABIKoilib(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	modules := filepath.Join(dir, "..", "..", "..", "node", "testdata", "koilib", "node_modules")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(modules, "koilib"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Node.js and koilib are required in CI: %v", err)
		}
		t.Skipf("Node.js or koilib missing (make js-deps installs koilib): %v", err)
	}
	balance, err := (&tokenpb.BalanceOfResult{Value: 9007199254740993}).MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "koilib_abi.js"), filepath.Join(dir, "abi", "token.abi"), hex.EncodeToString(balance))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("koilib: %v", err)
	}
	type operation struct {
		EntryPoint uint32 `json:"entry_point"`
		Args       string `json:"args"`
	}
	var got struct {
		From, To  string
		Functions []string
		Transfer  operation
		Mint      operation
		Burn      operation
		BalanceOf operation `json:"balance_of"`
		Balance   struct{ Value string }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("koilib's output %q: %v", out, err)
	}
	from, err1 := hex.DecodeString(got.From)
	to, err2 := hex.DecodeString(got.To)
	if err1 != nil || err2 != nil || len(from) != 25 || len(to) != 25 {
		t.Fatalf("accounts %q %q", got.From, got.To)
	}
	want := []string{"balance_of", "burn", "decimals", "mint", "name", "symbol", "total_supply", "transfer"}
	if !slices.Equal(got.Functions, want) {
		t.Errorf("koilib's functions %v, want %v", got.Functions, want)
	}
	for _, c := range []struct {
		name string
		got  operation
		ep   uint32
		msg  interface{ MarshalVT() ([]byte, error) }
	}{
		{"transfer", got.Transfer, TokenTransfer, &tokenpb.TransferArguments{From: from, To: to, Value: 1234567890123}},
		{"mint", got.Mint, TokenMint, &tokenpb.MintArguments{To: to, Value: 42}},
		{"burn", got.Burn, TokenBurn, &tokenpb.BurnArguments{From: from, Value: 7}},
		{"balance_of", got.BalanceOf, TokenBalanceOf, &tokenpb.BalanceOfArguments{Owner: from}},
	} {
		b, err := c.msg.MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		if c.got.EntryPoint != c.ep || c.got.Args != hex.EncodeToString(b) {
			t.Errorf("%s: koilib sends entry point 0x%08x args %s; the contract reads 0x%08x %x", c.name, c.got.EntryPoint, c.got.Args, c.ep, b)
		}
	}
	if got.Balance.Value != "9007199254740993" {
		t.Errorf("balance_of's result decoded by koilib: %q, want 9007199254740993 (a string, past 2^53)", got.Balance.Value)
	}
}
