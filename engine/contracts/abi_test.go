package contracts

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"

	koinospb "github.com/emberchain/ember/proto/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// cliABI and cliABIMethod are koinos-cli's ABI types (internal/cli/abi.go,
// the same at v2.0.0 and HEAD): it reads only the Koinos spellings.
type cliABI struct {
	Methods map[string]*cliABIMethod
	Types   []byte
}

type cliABIMethod struct {
	Argument    string `json:"argument"`
	Return      string `json:"return"`
	EntryPoint  string `json:"entry-point"`
	Description string `json:"description"`
	ReadOnly    bool   `json:"read-only"`
}

// cliFiles is koinos-cli's ABI.GetFiles: the Koinos files compiled into it,
// each replaced by a file of the same name from the ABI's types. Ember has
// no copy of koinos/chain/events.proto, which koinos-cli also preloads;
// nothing in a token ABI needs it or collides with it.
func cliFiles(t *testing.T, types []byte, preload bool) (*protoregistry.Files, error) {
	t.Helper()
	fileMap := map[string]*descriptorpb.FileDescriptorProto{}
	add := func(fd *descriptorpb.FileDescriptorProto) { fileMap[fd.GetName()] = fd }
	add(protodesc.ToFileDescriptorProto((&descriptorpb.FieldOptions{}).ProtoReflect().Descriptor().ParentFile()))
	add(protodesc.ToFileDescriptorProto(koinospb.File_koinos_options_proto))
	if preload {
		add(protodesc.ToFileDescriptorProto(koinospb.File_koinos_common_proto))
		add(protodesc.ToFileDescriptorProto(protocol.File_koinos_protocol_protocol_proto))
		add(protodesc.ToFileDescriptorProto(chainpb.File_koinos_chain_chain_proto))
		add(protodesc.ToFileDescriptorProto(chainpb.File_koinos_chain_error_proto))
		add(protodesc.ToFileDescriptorProto(chainpb.File_koinos_chain_object_spaces_proto))
		add(protodesc.ToFileDescriptorProto(chainpb.File_koinos_chain_value_proto))
		add(protodesc.ToFileDescriptorProto((&anypb.Any{}).ProtoReflect().Descriptor().ParentFile()))
		add(protodesc.ToFileDescriptorProto(chainpb.File_koinos_chain_authority_proto))
		add(protodesc.ToFileDescriptorProto(chainpb.File_koinos_chain_system_call_ids_proto))
		add(protodesc.ToFileDescriptorProto(chainpb.File_koinos_chain_system_calls_proto))
	}
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(types, &fds); err != nil {
		return nil, err
	}
	for _, fd := range fds.GetFile() {
		add(fd)
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range fileMap {
		set.File = append(set.File, fd)
	}
	return protodesc.FileOptions{}.NewFiles(set)
}

// cliArgKind is koinos-cli's ParseABIFields for one field: the command
// argument type it builds, "" for a kind it refuses.
func cliArgKind(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return "bool"
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		return "int"
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind:
		return "uint"
	case protoreflect.StringKind, protoreflect.EnumKind:
		return "string"
	case protoreflect.BytesKind:
		opts := fd.Options().(*descriptorpb.FieldOptions)
		switch koinospb.BytesType(opts.ProtoReflect().Get(koinospb.E_Btype.TypeDescriptor()).Enum()) {
		case koinospb.BytesType_HEX, koinospb.BytesType_BLOCK_ID, koinospb.BytesType_TRANSACTION_ID:
			return "hex"
		case koinospb.BytesType_BASE58, koinospb.BytesType_CONTRACT_ID, koinospb.BytesType_ADDRESS:
			return "address"
		}
		return "bytes"
	case protoreflect.MessageKind:
		return "message"
	}
	return ""
}

// TestTokenABIKoinosCLI registers the served token ABI the way koinos-cli
// does (RegisterCommand.Execute and ReadContractCommand): at HEAD, which
// defaults an empty argument or result to the empty messages and slices
// "entry-point"[2:]; at v2.0.0, which looks every type up as named; and
// with no preloaded Koinos files, as koilib resolves names only from
// "types".
func TestTokenABIKoinosCLI(t *testing.T) {
	abiJSON, err := buildABI()
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := map[string]map[string]string{
		"balanceOf": {"owner": "address"},
		"transfer":  {"from": "address", "to": "address", "value": "uint", "memo": "string"},
		"mint":      {"to": "address", "value": "uint"},
		"burn":      {"from": "address", "value": "uint"},
	}
	wantEntry := map[string]uint32{
		"name": EntryName, "symbol": EntrySymbol, "decimals": EntryDecimals, "getInfo": EntryGetInfo,
		"totalSupply": EntryTotalSupply, "balanceOf": EntryBalanceOf, "transfer": EntryTransfer,
		"mint": EntryMint, "burn": EntryBurn,
	}
	for _, tc := range []struct {
		name     string
		preload  bool
		defaults bool
	}{
		{"koinos-cli HEAD", true, true},
		{"koinos-cli v2.0.0", true, false},
		{"types alone (koilib)", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var abi cliABI
			if err := json.Unmarshal([]byte(abiJSON), &abi); err != nil {
				t.Fatalf("invalid ABI: %v", err)
			}
			files, err := cliFiles(t, abi.Types, tc.preload)
			if err != nil {
				t.Fatalf("invalid ABI: %v", err)
			}
			if len(abi.Methods) != len(wantEntry) {
				t.Fatalf("%d methods, want %d", len(abi.Methods), len(wantEntry))
			}
			for name, m := range abi.Methods {
				if tc.defaults {
					if m.Argument == "" {
						m.Argument = NopArguments
					}
					if m.Return == "" {
						m.Return = NopResult
					}
				}
				args := map[string]string{}
				for i, typ := range []string{m.Argument, m.Return} {
					d, err := files.FindDescriptorByName(protoreflect.FullName(typ))
					if err != nil {
						t.Fatalf("%s: invalid ABI: could not find type %q", name, typ)
					}
					md, ok := d.(protoreflect.MessageDescriptor)
					if !ok {
						t.Fatalf("%s: %s is not a message", name, typ)
					}
					if i == 0 {
						for j := 0; j < md.Fields().Len(); j++ {
							fd := md.Fields().Get(j)
							k := cliArgKind(fd)
							if k == "" {
								t.Fatalf("%s: unsupported field kind %v", name, fd.Kind())
							}
							args[string(fd.Name())] = k
						}
					}
				}
				if len(args) != len(wantArgs[name]) {
					t.Errorf("%s: arguments %v, want %v", name, args, wantArgs[name])
				}
				for f, k := range wantArgs[name] {
					if args[f] != k {
						t.Errorf("%s.%s: argument kind %q, want %q", name, f, args[f], k)
					}
				}
				if !strings.HasPrefix(m.EntryPoint, "0x") {
					t.Fatalf("%s: entry-point %q has no 0x prefix", name, m.EntryPoint)
				}
				ep, err := strconv.ParseUint(m.EntryPoint[2:], 16, 32)
				if err != nil || uint32(ep) != wantEntry[name] {
					t.Fatalf("%s: entry-point %q = %d, %v; want 0x%08x", name, m.EntryPoint, ep, err, wantEntry[name])
				}
			}
		})
	}
}

// TestTokenABIKoilibKeys checks the keys koilib reads sit beside Koinos's
// and agree with them.
func TestTokenABIKoilibKeys(t *testing.T) {
	abiJSON, err := buildABI()
	if err != nil {
		t.Fatal(err)
	}
	var abi struct {
		Methods map[string]map[string]any `json:"methods"`
	}
	if err := json.Unmarshal([]byte(abiJSON), &abi); err != nil {
		t.Fatal(err)
	}
	for name, m := range abi.Methods {
		ep, ok := m["entry_point"].(float64)
		if !ok || fmt.Sprintf("0x%08x", uint32(ep)) != m["entry-point"] {
			t.Errorf("%s: entry_point %v and entry-point %v disagree", name, m["entry_point"], m["entry-point"])
		}
		if m["read_only"] != m["read-only"] || m["read_only"] == nil {
			t.Errorf("%s: read_only %v and read-only %v disagree", name, m["read_only"], m["read-only"])
		}
		if m["argument"] == "" || m["return"] == "" {
			t.Errorf("%s: empty argument or return type", name)
		}
	}
}
