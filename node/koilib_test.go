package node

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
)

// requireTool finds a command; in CI a missing one fails the test.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// TestKoilibWallet runs koilib, Koinos's wallet library, unmodified against
// a node: head, chain id, nonce, rc, a token transfer signed by koilib
// through Contract and utils.tokenAbi, wait, balances, the served ABI, and
// an error for a bad nonce (testdata/koilib/wallet.js).
// requireKoilib skips (fails in CI) without Node.js and koilib, before a
// test starts any node.
func requireKoilib(t *testing.T) {
	t.Helper()
	requireTool(t, "node")
	dir := filepath.Join("testdata", "koilib")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "koilib")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("koilib is not installed: run `npm ci --prefix %s` (make test does)", dir)
		}
		t.Skipf("koilib is not installed: run `npm ci --prefix %s` (make test does)", dir)
	}
}

// runKoilib runs a script of testdata/koilib with Node.js and returns what
// it printed.
func runKoilib(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, requireTool(t, "node"), append([]string{script}, args...)...)
	cmd.Dir = filepath.Join("testdata", "koilib")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("koilib %s failed: %v\n%s", script, err, stderr)
	}
	return out
}

func TestKoilibWallet(t *testing.T) {
	requireKoilib(t)
	tn := newTestNet(t, 2, 200*time.Millisecond)
	wallet := tn.users[0] // secp256k1: what koilib signs with
	if wallet.Scheme() != keys.SchemeSecp256k1 {
		t.Fatal("user 0 must be a secp256k1 key")
	}
	to := keys.Ed25519FromSeed(seed("koilib-recipient")).Address()
	out := runKoilib(t, "wallet.js", "http://"+tn.n.RPCAddr()+"/", wallet.String(), tn.g.TokenID().String(), to.String())
	var got struct {
		ChainID        string `json:"chainId"`
		Nonce          int    `json:"nonce"`
		RC             string `json:"rc"`
		TxID           string `json:"txId"`
		ReceiptRcUsed  string `json:"receiptRcUsed"`
		ReceiptReverts bool   `json:"receiptReverted"`
		BlockNumber    int    `json:"blockNumber"`
		BlockHasTx     bool   `json:"blockHasTx"`
		ToBefore       string `json:"toBefore"`
		ToAfter        string `json:"toAfter"`
		FromBefore     string `json:"fromBefore"`
		FromAfter      string `json:"fromAfter"`
		NonceAfter     int    `json:"nonceAfter"`
		ViaServedAbi   string `json:"viaServedAbi"`
		SymbolServed   string `json:"symbolViaServedAbi"`
		BadError       string `json:"badError"`
		Info           struct {
			Symbol   string `json:"symbol"`
			Decimals int    `json:"decimals"`
		} `json:"info"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("koilib output %q: %v", out, err)
	}
	if got.ChainID != b64url(tn.g.ChainID().Multihash()) || got.Nonce != 0 || got.RC != strconv.Itoa(testFunds) {
		t.Fatalf("koilib read chain id %s nonce %d rc %s", got.ChainID, got.Nonce, got.RC)
	}
	if got.ReceiptReverts || got.ReceiptRcUsed == "" || got.ReceiptRcUsed == "0" {
		t.Fatalf("receipt: reverted %v rc_used %s", got.ReceiptReverts, got.ReceiptRcUsed)
	}
	if got.BlockNumber < 1 || !got.BlockHasTx || got.NonceAfter != 1 {
		t.Fatalf("block %d has tx %v nonce after %d", got.BlockNumber, got.BlockHasTx, got.NonceAfter)
	}
	// koilib's balanceOf leaves out zero values (its default_output).
	if got.ToBefore != "" && got.ToBefore != "0" || got.ToAfter != "12345" || got.ViaServedAbi != "12345" {
		t.Fatalf("recipient balance %q -> %q (served ABI %q)", got.ToBefore, got.ToAfter, got.ViaServedAbi)
	}
	if got.FromBefore != strconv.Itoa(testFunds) || got.FromAfter != strconv.Itoa(testFunds-12345) {
		t.Fatalf("sender balance %s -> %s", got.FromBefore, got.FromAfter)
	}
	if got.Info.Symbol != "EMB" || got.Info.Decimals != 8 || got.SymbolServed != "EMB" {
		t.Fatalf("token info %+v, symbol via the served ABI %q", got.Info, got.SymbolServed)
	}
	if !strings.Contains(got.BadError, "-201") || !strings.Contains(got.BadError, "nonce") {
		t.Fatalf("bad nonce error as koilib shows it: %q", got.BadError)
	}
	// The node agrees with what koilib saw.
	if b := tn.balance(to); b != 12345 {
		t.Fatalf("node says recipient has %d", b)
	}
	id, err := koinos.ParseMultihash(mustHex(t, got.TxID))
	if err != nil {
		t.Fatal(err)
	}
	tn.waitTx(id.Multihash())
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := decodeHex(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64url(b []byte) string { return base64.URLEncoding.EncodeToString(b) }

func decodeHex(s string) ([]byte, error) { return hex.DecodeString(s) }
