package genesis

import (
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/koinos"
	emberpb "github.com/emberchain/ember/proto/ember"
)

func devGenesis(t *testing.T) *Genesis {
	t.Helper()
	g, err := Dev(DevOptions{
		Producers: []koinos.Address{koinos.AddressFromKey([]byte("p"))},
		Balances:  map[koinos.Address]uint64{koinos.AddressFromKey([]byte("a")): 5, koinos.AddressFromKey([]byte("b")): 7},
		Now:       time.UnixMilli(1_700_000_000_000),
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestEncodeParseKeepsTheChainID(t *testing.T) {
	g := devGenesis(t)
	b, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g2, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if g2.ChainID() != g.ChainID() || g2.TotalSupply() != 12 {
		t.Fatal("round trip changed the chain")
	}
	// The chain id commits to every parameter and balance.
	m := g.Message().CloneVT()
	m.Balances[0].Amount++
	g3, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	if g3.ChainID() == g.ChainID() {
		t.Fatal("a balance change must change the chain id")
	}
	// Balances are sorted, so their order in the file does not matter.
	m = g.Message().CloneVT()
	m.Balances[0], m.Balances[1] = m.Balances[1], m.Balances[0]
	g4, _ := New(m)
	if g4.ChainID() != g.ChainID() {
		t.Fatal("balance order changed the chain id")
	}
	writes, root := g.State()
	if len(writes) != 4 || root == (koinos.Digest{}) {
		t.Fatalf("genesis state: %d writes", len(writes))
	}
}

func TestRefusesBadGenesis(t *testing.T) {
	base := devGenesis(t).Message()
	tests := []struct {
		name   string
		mutate func(*emberpb.Genesis)
		want   string
	}{
		{"no parameters", func(m *emberpb.Genesis) { m.Parameters = nil }, "parameters are missing"},
		{"no name", func(m *emberpb.Genesis) { m.Parameters.ChainName = "" }, "chain_name"},
		{"no time", func(m *emberpb.Genesis) { m.Parameters.GenesisTimeMs = 0 }, "genesis_time_ms"},
		{"tiny interval", func(m *emberpb.Genesis) { m.Parameters.BlockIntervalMs = 1 }, "block_interval_ms"},
		{"no producers", func(m *emberpb.Genesis) { m.Parameters.Producers = nil }, "producers"},
		{"bad producer", func(m *emberpb.Genesis) { m.Parameters.Producers[0] = []byte{1, 2} }, "producers[0]"},
		{"duplicate producer", func(m *emberpb.Genesis) {
			m.Parameters.Producers = append(m.Parameters.Producers, m.Parameters.Producers[0])
		}, "listed twice"},
		{"bad token id", func(m *emberpb.Genesis) { m.Parameters.Token.ContractId = []byte{0} }, "token.contract_id"},
		{"decimals", func(m *emberpb.Genesis) { m.Parameters.Token.Decimals = 19 }, "decimals"},
		{"regen", func(m *emberpb.Genesis) { m.Parameters.ManaRegenMs = 0 }, "mana_regen_ms"},
		{"limits", func(m *emberpb.Genesis) { m.Parameters.Limits.MaxBlockTransactions = 0 }, "limits"},
		{"tx above block", func(m *emberpb.Genesis) { m.Parameters.Limits.MaxTransactionBytes = 1 << 40 }, "could never fit"},
		{"duplicate balance", func(m *emberpb.Genesis) { m.Balances = append(m.Balances, m.Balances[0]) }, "two balances"},
		{"overflow", func(m *emberpb.Genesis) { m.Balances[0].Amount = 1<<64 - 1 }, "more than 2^64-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base.CloneVT()
			tt.mutate(m)
			if _, err := New(m); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Parse([]byte(`{"parameters": 5}`)); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func FuzzParse(f *testing.F) {
	b, _ := devGenesis(&testing.T{}).Encode()
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			return
		}
		out, err := g.Encode()
		if err != nil {
			t.Fatal(err)
		}
		g2, err := Parse(out)
		if err != nil || g2.ChainID() != g.ChainID() {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
