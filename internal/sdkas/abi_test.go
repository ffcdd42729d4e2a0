package sdkas

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

var update = flag.Bool("update", false, "rewrite testdata/abi from GenerateABI")

// TestABIFiles: the committed ABIs are what GenerateABI writes now, and it
// writes the same bytes twice. -update rewrites them.
func TestABIFiles(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ABINames() {
		want, err := GenerateABI(name)
		if err != nil {
			t.Fatal(err)
		}
		again, err := GenerateABI(name)
		if err != nil || !bytes.Equal(want, again) {
			t.Fatalf("%s: GenerateABI is not reproducible (%v)", name, err)
		}
		path := filepath.Join(dir, "abi", name+".abi")
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./internal/sdkas -run TestABIFiles -update writes it)", err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s differs from GenerateABI(%q): go test ./internal/sdkas -run TestABIFiles -update rewrites it", path, name)
		}
	}
	if _, err := GenerateABI("no-such-contract"); err == nil {
		t.Error("GenerateABI of an unknown contract: no error")
	}
}

// TestTokenEntryPoints: the ids the contract switches on are the SDK's
// derivation from the method names.
func TestTokenEntryPoints(t *testing.T) {
	for name, ep := range map[string]uint32{
		"name": TokenName, "symbol": TokenSymbol, "decimals": TokenDecimals, "total_supply": TokenTotalSupply,
		"balance_of": TokenBalanceOf, "transfer": TokenTransfer, "mint": TokenMint, "burn": TokenBurn,
	} {
		if got := EntryPoint(name); got != ep {
			t.Errorf("EntryPoint(%q) = 0x%08x, the constant says 0x%08x", name, got, ep)
		}
	}
}

// cliABI and cliABIMethod are koinos-cli's ABI types (internal/cli/abi.go):
// it reads only the Koinos spellings.
type cliABI struct {
	Methods map[string]*cliABIMethod
	Types   []byte
}

type cliABIMethod struct {
	Argument   string `json:"argument"`
	Return     string `json:"return"`
	EntryPoint string `json:"entry-point"`
	ReadOnly   bool   `json:"read-only"`
}

// TestABIKoinosCLIAndKoilibKeys reads each committed ABI as koinos-cli
// does (every type resolved from "types" with koinos/options.proto built
// in; "entry-point" parsed after its 0x) and checks koilib's keys agree.
func TestABIKoinosCLIAndKoilibKeys(t *testing.T) {
	for _, name := range ABINames() {
		raw := ABI(t, name)
		var abi cliABI
		if err := json.Unmarshal(raw, &abi); err != nil {
			t.Fatalf("%s: koinos-cli would refuse it: %v", name, err)
		}
		files, err := ABITypes(raw)
		if err != nil {
			t.Fatalf("%s: types do not resolve: %v", name, err)
		}
		var koilib struct {
			Methods map[string]map[string]any `json:"methods"`
			Events  map[string]struct{ Type string }
		}
		if err := json.Unmarshal(raw, &koilib); err != nil {
			t.Fatal(err)
		}
		if len(abi.Methods) == 0 || len(koilib.Events) == 0 {
			t.Fatalf("%s: no methods or no events", name)
		}
		for ename, e := range koilib.Events {
			if d, err := files.FindDescriptorByName(protoreflect.FullName(e.Type)); err != nil {
				t.Fatalf("%s: event %s: type %q: %v", name, ename, e.Type, err)
			} else if _, ok := d.(protoreflect.MessageDescriptor); !ok {
				t.Fatalf("%s: event %s: %q is not a message", name, ename, e.Type)
			}
		}
		for mname, m := range abi.Methods {
			for _, typ := range []string{m.Argument, m.Return} {
				d, err := files.FindDescriptorByName(protoreflect.FullName(typ))
				if err != nil {
					t.Fatalf("%s.%s: type %q: %v", name, mname, typ, err)
				}
				if _, ok := d.(protoreflect.MessageDescriptor); !ok {
					t.Fatalf("%s.%s: %q is not a message", name, mname, typ)
				}
			}
			if !strings.HasPrefix(m.EntryPoint, "0x") {
				t.Fatalf("%s.%s: entry-point %q has no 0x", name, mname, m.EntryPoint)
			}
			ep, err := strconv.ParseUint(m.EntryPoint[2:], 16, 32)
			if err != nil || uint32(ep) != EntryPoint(mname) {
				t.Errorf("%s.%s: entry-point %q, want 0x%08x", name, mname, m.EntryPoint, EntryPoint(mname))
			}
			k := koilib.Methods[mname]
			if n, ok := k["entry_point"].(float64); !ok || uint32(n) != uint32(ep) {
				t.Errorf("%s.%s: entry_point %v and entry-point %s disagree", name, mname, k["entry_point"], m.EntryPoint)
			}
			if ro, ok := k["read_only"].(bool); !ok || ro != m.ReadOnly {
				t.Errorf("%s.%s: read_only %v and read-only %v disagree", name, mname, k["read_only"], m.ReadOnly)
			}
		}
	}
}
