package node

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/internal/sdkas"
)

// TestKoilibDeployContracts is a Koinos developer's workflow against a
// live node, with koilib unmodified (testdata/koilib/contracts.js): two
// AssemblyScript contracts built with Koinos's SDK at test time (a KCS-1
// token and a key-value store) are deployed with Contract.deploy, called
// through the functions koilib generates from their ABIs, read through
// chain.read_contract, their events decoded, errors shown, and the token
// called again through the ABI the node serves for it.
func TestKoilibDeployContracts(t *testing.T) {
	requireKoilib(t)
	dir := t.TempDir()
	paths := map[string]string{}
	for _, name := range []string{"token", "kvstore"} {
		paths[name+".wasm"] = filepath.Join(dir, name+".wasm")
		paths[name+".abi"] = filepath.Join(dir, name+".abi")
		if err := os.WriteFile(paths[name+".wasm"], sdkas.Contract(t, name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(paths[name+".abi"], sdkas.ABI(t, name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tn := newTestNet(t, 5, 200*time.Millisecond)
	user, tokenKey, kvKey := tn.users[0], tn.users[2], tn.users[4]
	for _, k := range []keys.Signer{user, tokenKey, kvKey} {
		if k.Scheme() != keys.SchemeSecp256k1 {
			t.Fatal("koilib signs with secp256k1 keys: users 0, 2 and 4 must be")
		}
	}
	recipient := keys.Ed25519FromSeed(seed("contracts-recipient")).Address()
	out := runKoilib(t, "contracts.js", "http://"+tn.n.RPCAddr()+"/", tokenKey.String(), kvKey.String(), user.String(), recipient.String(),
		paths["token.wasm"], paths["token.abi"], paths["kvstore.wasm"], paths["kvstore.abi"])
	type value struct {
		Value string `json:"value"`
	}
	var got struct {
		TokenID          string `json:"tokenId"`
		DeployReverted   bool   `json:"deployReverted"`
		DeployRcUsed     string `json:"deployRcUsed"`
		MintReverted     bool   `json:"mintReverted"`
		TransferReverted bool   `json:"transferReverted"`
		TransferEvents   []struct {
			Name   string `json:"name"`
			Source string `json:"source"`
			Args   struct {
				From  string `json:"from"`
				To    string `json:"to"`
				Value string `json:"value"`
			} `json:"args"`
		} `json:"transferEvents"`
		BalanceMe        value    `json:"balanceMe"`
		BalanceRecipient value    `json:"balanceRecipient"`
		Supply           value    `json:"supply"`
		Symbol           value    `json:"symbol"`
		OverdraftError   string   `json:"overdraftError"`
		TheftError       string   `json:"theftError"`
		ViaServedAbi     value    `json:"viaServedAbi"`
		KvID             string   `json:"kvId"`
		PutEvents        []string `json:"putEvents"`
		Got              struct {
			Value string `json:"value"`
			Found bool   `json:"found"`
		} `json:"got"`
		Missing struct {
			Found bool `json:"found"`
		} `json:"missing"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("koilib output %q: %v", out, err)
	}
	t.Logf("koilib saw %s", out)
	if got.TokenID != tokenKey.Address().String() || got.KvID != kvKey.Address().String() {
		t.Fatalf("contract ids %s and %s, want the deployers' addresses", got.TokenID, got.KvID)
	}
	if got.DeployReverted || got.DeployRcUsed == "" || got.DeployRcUsed == "0" || got.MintReverted || got.TransferReverted {
		t.Fatalf("receipts: deploy reverted %v (rc %s), mint reverted %v, transfer reverted %v", got.DeployReverted, got.DeployRcUsed, got.MintReverted, got.TransferReverted)
	}
	if len(got.TransferEvents) != 1 || got.TransferEvents[0].Name != "token.transfer_event" || got.TransferEvents[0].Source != got.TokenID ||
		got.TransferEvents[0].Args.From != user.Address().String() || got.TransferEvents[0].Args.To != recipient.String() || got.TransferEvents[0].Args.Value != "300" {
		t.Fatalf("transfer events as koilib decodes them: %+v", got.TransferEvents)
	}
	if got.BalanceMe.Value != "700" || got.BalanceRecipient.Value != "300" || got.Supply.Value != "1000" || got.Symbol.Value != "ETT" || got.ViaServedAbi.Value != "300" {
		t.Fatalf("reads: me %q, recipient %q, supply %q, symbol %q, via the served ABI %q", got.BalanceMe, got.BalanceRecipient, got.Supply, got.Symbol, got.ViaServedAbi)
	}
	if got.OverdraftError == "" || got.TheftError == "" || !strings.Contains(got.TheftError, "-200") {
		t.Fatalf("errors as koilib shows them: overdraft %q, theft %q", got.OverdraftError, got.TheftError)
	}
	if len(got.PutEvents) != 1 || got.PutEvents[0] != "kvstore.put_event" || !got.Got.Found || strings.TrimRight(got.Got.Value, "=") != strings.TrimRight(base64.URLEncoding.EncodeToString([]byte("hello ember")), "=") || got.Missing.Found {
		t.Fatalf("kvstore: events %v, get %+v, missing %+v", got.PutEvents, got.Got, got.Missing)
	}
	// The node agrees: the contracts are stored with their ABIs.
	for _, k := range []keys.Signer{tokenKey, kvKey} {
		code, meta, abi, found, err := tn.n.chain.View().Contract(k.Address().Bytes())
		if err != nil || !found || len(code) == 0 || len(meta.GetHash()) == 0 || !strings.Contains(abi, "entry-point") {
			t.Fatalf("contract %s at the head: %d bytes, %v, abi %d bytes, %v, %v", k.Address(), len(code), meta, len(abi), found, err)
		}
	}
}
