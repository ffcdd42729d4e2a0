package sdkas

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emberchain/ember/engine/koinos"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
)

// koilibOperation is a contract call as koilib puts it in a transaction.
type koilibOperation struct {
	EntryPoint uint32 `json:"entry_point"`
	Args       string `json:"args"`
}

// TestABIKoilib hands the committed ABIs to koilib 9.1.1 (the copy node's
// tests install) and checks what a wallet would send and read: each
// method becomes a function; the arguments koilib serializes with the
// ABI's types are the bytes the contracts decode, at their entry points;
// results and events (through the ABI's "events") decode.
func TestABIKoilib(t *testing.T) {
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
	eventFrom := koinos.AddressFromKey([]byte("event from"))
	eventTo := koinos.AddressFromKey([]byte("event to"))
	input, err := json.Marshal(map[string]string{
		"balance":       hex.EncodeToString(mustMarshalVT(t, &tokenpb.BalanceOfResult{Value: 9007199254740993})),
		"transferEvent": hex.EncodeToString(mustMarshalVT(t, &tokenpb.TransferEvent{From: eventFrom.Bytes(), To: eventTo.Bytes(), Value: 5})),
		"putEvent":      hex.EncodeToString(kvPair("greeting", "hello")),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "koilib_abi.js"), filepath.Join(dir, "abi"), string(input))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("koilib: %v", err)
	}
	var got struct {
		From             string
		To               string
		TokenFunctions   []string `json:"token_functions"`
		KVStoreFunctions []string `json:"kvstore_functions"`
		Transfer         koilibOperation
		Mint             koilibOperation
		Burn             koilibOperation
		BalanceOf        koilibOperation `json:"balance_of"`
		Put              koilibOperation
		Balance          struct{ Value string }
		TransferEvent    struct{ From, To, Value string } `json:"transfer_event"`
		PutEvent         struct{ Key, Value string }      `json:"put_event"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("koilib's output %q: %v", out, err)
	}
	from, err1 := hex.DecodeString(got.From)
	to, err2 := hex.DecodeString(got.To)
	if err1 != nil || err2 != nil || len(from) != 25 || len(to) != 25 {
		t.Fatalf("accounts %q %q", got.From, got.To)
	}
	if want := []string{"balance_of", "burn", "decimals", "mint", "name", "symbol", "total_supply", "transfer"}; !slices.Equal(got.TokenFunctions, want) {
		t.Errorf("koilib's token functions %v, want %v", got.TokenFunctions, want)
	}
	if want := []string{"get", "put", "remove"}; !slices.Equal(got.KVStoreFunctions, want) {
		t.Errorf("koilib's kvstore functions %v, want %v", got.KVStoreFunctions, want)
	}
	for _, c := range []struct {
		name string
		got  koilibOperation
		ep   uint32
		args []byte
	}{
		{"transfer", got.Transfer, TokenTransfer, mustMarshalVT(t, &tokenpb.TransferArguments{From: from, To: to, Value: 1234567890123})},
		{"mint", got.Mint, TokenMint, mustMarshalVT(t, &tokenpb.MintArguments{To: to, Value: 42})},
		{"burn", got.Burn, TokenBurn, mustMarshalVT(t, &tokenpb.BurnArguments{From: from, Value: 7})},
		{"balance_of", got.BalanceOf, TokenBalanceOf, mustMarshalVT(t, &tokenpb.BalanceOfArguments{Owner: from})},
		{"kvstore put", got.Put, EntryPoint("put"), kvPair("greeting", "hello")},
	} {
		if c.got.EntryPoint != c.ep || c.got.Args != hex.EncodeToString(c.args) {
			t.Errorf("%s: koilib sends entry point 0x%08x args %s; the contract reads 0x%08x %x", c.name, c.got.EntryPoint, c.got.Args, c.ep, c.args)
		}
	}
	if got.Balance.Value != "9007199254740993" {
		t.Errorf("balance_of's result decoded by koilib: %q, want 9007199254740993 (a string, past 2^53)", got.Balance.Value)
	}
	if e := got.TransferEvent; e.From != eventFrom.String() || e.To != eventTo.String() || e.Value != "5" {
		t.Errorf("token.transfer_event decoded by koilib: %+v", e)
	}
	// Bytes without a btype come out in base64 (koilib leaves them to
	// protobufjs, which pads; its own encoder writes base64url).
	if e := got.PutEvent; e.Key != "greeting" || e.Value != base64.StdEncoding.EncodeToString([]byte("hello")) {
		t.Errorf("kvstore.put_event decoded by koilib: %+v", e)
	}
}

func mustMarshalVT(t *testing.T, m interface{ MarshalVT() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kvPair is kvstore's put_arguments and put_event on the wire: string key
// = 1, bytes value = 2.
func kvPair(key, value string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, value)
}
