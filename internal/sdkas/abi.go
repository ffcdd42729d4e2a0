package sdkas

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/emberchain/ember/engine/contracts"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	koinospb "github.com/emberchain/ember/proto/koinos"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
)

// EntryPoint is the entry point id of a method as Koinos's SDK derives it
// (@koinos/abi-proto-gen, @koinos/as-gen): the first four bytes of the
// SHA-256 of its name, big-endian. KCS-1's ids are these: transfer is
// 0x27f576ca.
func EntryPoint(method string) uint32 {
	sum := sha256.Sum256([]byte(method))
	return binary.BigEndian.Uint32(sum[:4])
}

// Entry points of the token contract (assembly/token.ts), EntryPoint of
// each method name.
const (
	TokenName        uint32 = 0x82a3537f
	TokenSymbol      uint32 = 0xb76a7ca1
	TokenDecimals    uint32 = 0xee80fd2f
	TokenTotalSupply uint32 = 0xb0da3934
	TokenBalanceOf   uint32 = 0x5c721497
	TokenTransfer    uint32 = 0x27f576ca
	TokenMint        uint32 = 0xdc6f17bb
	TokenBurn        uint32 = 0x859facc5
)

// Event names of the token contract: those of Koinos's koin contract, with
// koinos.contracts.token's transfer_event, mint_event and burn_event as
// their data.
const (
	TokenTransferEvent = "token.transfer_event"
	TokenMintEvent     = "token.mint_event"
	TokenBurnEvent     = "token.burn_event"
)

// abiEvent names the message of an event's data, for koilib's
// decodeEvent; koinos-cli ignores events.
type abiEvent struct {
	Type        string `json:"type"`
	Description string `json:"description"`
}

// abiJSON is an ABI file: "types" is the base64 FileDescriptorSet of the
// messages the methods name (koilib turns it back into .proto text,
// koinos-cli builds a registry from it).
type abiJSON struct {
	Methods map[string]contracts.ABIMethod `json:"methods"`
	Events  map[string]abiEvent            `json:"events"`
	Types   string                         `json:"types"`
}

// method describes one ABI method; the entry point is derived from name.
type method struct {
	name, argument, result, description string
	readOnly                            bool
	defaultOutput                       map[string]any
}

// event describes one event a contract emits.
type event struct{ name, typ, description string }

// contractABI is what an ABI is generated from.
type contractABI struct {
	methods []method
	events  []event
	// files are the proto files of the argument and result types.
	files func() []*descriptorpb.FileDescriptorProto
}

// koinosTokenGoPackage is koinos-proto's go_package for
// koinos/contracts/token/token.proto: the ABI carries Koinos's file, not
// the Go path of Ember's copy of it.
const koinosTokenGoPackage = "github.com/koinos/koinos-proto-golang/v2/koinos/contracts/token"

var abis = map[string]contractABI{
	"token": {
		methods: []method{
			{"name", "koinos.contracts.token.name_arguments", "koinos.contracts.token.name_result", "Returns the token's name", true, nil},
			{"symbol", "koinos.contracts.token.symbol_arguments", "koinos.contracts.token.symbol_result", "Returns the token's symbol", true, nil},
			{"decimals", "koinos.contracts.token.decimals_arguments", "koinos.contracts.token.decimals_result", "Returns the token's decimals precision", true, nil},
			{"total_supply", "koinos.contracts.token.total_supply_arguments", "koinos.contracts.token.total_supply_result", "Returns the token's total supply", true, map[string]any{"value": "0"}},
			{"balance_of", "koinos.contracts.token.balance_of_arguments", "koinos.contracts.token.balance_of_result", "Checks the balance at an address", true, map[string]any{"value": "0"}},
			{"transfer", "koinos.contracts.token.transfer_arguments", "koinos.contracts.token.transfer_result", "Transfers the token (authority of 'from')", false, nil},
			{"mint", "koinos.contracts.token.mint_arguments", "koinos.contracts.token.mint_result", "Mints the token (authority of the contract)", false, nil},
			{"burn", "koinos.contracts.token.burn_arguments", "koinos.contracts.token.burn_result", "Burns the token (authority of 'from')", false, nil},
		},
		events: []event{
			{TokenTransferEvent, "koinos.contracts.token.transfer_event", "Tokens moved; impacted: to, from"},
			{TokenMintEvent, "koinos.contracts.token.mint_event", "Tokens created; impacted: to"},
			{TokenBurnEvent, "koinos.contracts.token.burn_event", "Tokens destroyed; impacted: from"},
		},
		files: func() []*descriptorpb.FileDescriptorProto {
			// Only the token file, as Koinos's own ABIs carry it: koilib turns
			// the set into .proto text for protobufjs, which cannot resolve
			// koinos/options.proto's extension, and reads (koinos.btype) by
			// name; koinos-cli has koinos/options.proto built in.
			fd := protodesc.ToFileDescriptorProto(tokenpb.File_koinos_contracts_token_token_proto)
			if fd.Options == nil {
				fd.Options = &descriptorpb.FileOptions{}
			}
			fd.Options.GoPackage = proto.String(koinosTokenGoPackage)
			return []*descriptorpb.FileDescriptorProto{fd}
		},
	},
	"kvstore": {
		methods: []method{
			{"put", "kvstore.put_arguments", "kvstore.empty_message", "Keeps value under key", false, nil},
			{"get", "kvstore.get_arguments", "kvstore.get_result", "The value under key, and whether there is one", true, map[string]any{"value": "", "found": false}},
			{"remove", "kvstore.remove_arguments", "kvstore.empty_message", "Forgets key", false, nil},
		},
		events: []event{
			{"kvstore.put_event", "kvstore.put_event", "A value was put"},
			{"kvstore.remove_event", "kvstore.remove_event", "A value was removed"},
		},
		files: func() []*descriptorpb.FileDescriptorProto {
			return []*descriptorpb.FileDescriptorProto{kvstoreFile()}
		},
	},
}

// kvstoreFile describes the messages of assembly/proto/kvstore.ts, which
// quotes the .proto this is built from.
func kvstoreFile() *descriptorpb.FileDescriptorProto {
	field := func(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(number), JsonName: proto.String(name),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: typ.Enum(),
		}
	}
	message := func(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	}
	const (
		stringType = descriptorpb.FieldDescriptorProto_TYPE_STRING
		bytesType  = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		boolType   = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	)
	return &descriptorpb.FileDescriptorProto{
		Name:    proto.String("kvstore.proto"),
		Package: proto.String("kvstore"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			message("put_arguments", field("key", 1, stringType), field("value", 2, bytesType)),
			message("get_arguments", field("key", 1, stringType)),
			message("get_result", field("value", 1, bytesType), field("found", 2, boolType)),
			message("remove_arguments", field("key", 1, stringType)),
			message("empty_message"),
			message("put_event", field("key", 1, stringType), field("value", 2, bytesType)),
			message("remove_event", field("key", 1, stringType)),
		},
	}
}

// ABINames lists the contracts GenerateABI knows, sorted.
func ABINames() []string {
	var names []string
	for n := range abis {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// GenerateABI writes the ABI of a contract as testdata/abi/<name>.abi
// holds it: indented JSON, keys sorted, a final newline; the same bytes
// on every run.
func GenerateABI(name string) ([]byte, error) {
	c, ok := abis[name]
	if !ok {
		return nil, fmt.Errorf("sdkas: no ABI for contract %q", name)
	}
	set := &descriptorpb.FileDescriptorSet{File: c.files()}
	types, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("sdkas: %s ABI types: %w", name, err)
	}
	if err := checkTypes(set, c); err != nil {
		return nil, fmt.Errorf("sdkas: %s ABI: %w", name, err)
	}
	out := abiJSON{Methods: map[string]contracts.ABIMethod{}, Events: map[string]abiEvent{}, Types: base64.StdEncoding.EncodeToString(types)}
	for _, m := range c.methods {
		ep := EntryPoint(m.name)
		am := contracts.NewABIMethod(m.argument, m.result, m.description, m.readOnly, ep)
		am.DefaultOutput = m.defaultOutput
		out.Methods[m.name] = am
	}
	for _, e := range c.events {
		out.Events[e.name] = abiEvent{Type: e.typ, Description: e.description}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sdkas: %s ABI: %w", name, err)
	}
	return append(b, '\n'), nil
}

// checkTypes makes sure every type a method or an event names is a
// message of the set, so that a typo fails generation, not a wallet.
func checkTypes(set *descriptorpb.FileDescriptorSet, c contractABI) error {
	messages := map[protoreflect.FullName]bool{}
	for _, fd := range set.GetFile() {
		for _, m := range fd.GetMessageType() {
			messages[protoreflect.FullName(fd.GetPackage()).Append(protoreflect.Name(m.GetName()))] = true
		}
	}
	for _, m := range c.methods {
		for _, t := range []string{m.argument, m.result} {
			if !messages[protoreflect.FullName(t)] {
				return fmt.Errorf("method %s: type %q is not in the ABI's types", m.name, t)
			}
		}
	}
	for _, e := range c.events {
		if !messages[protoreflect.FullName(e.typ)] {
			return fmt.Errorf("event %s: type %q is not in the ABI's types", e.name, e.typ)
		}
	}
	return nil
}

// ABITypes resolves the "types" of an ABI file as koinos-cli does, with
// koinos/options.proto and google/protobuf/descriptor.proto built in: a
// test builds its arguments and reads results and events with
// dynamicpb from it, exactly as the ABI describes them.
func ABITypes(abi []byte) (*protoregistry.Files, error) {
	var a struct {
		Types []byte `json:"types"`
	}
	if err := json.Unmarshal(abi, &a); err != nil {
		return nil, fmt.Errorf("sdkas: ABI: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(a.Types, &set); err != nil {
		return nil, fmt.Errorf("sdkas: ABI types: %w", err)
	}
	set.File = append([]*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		protodesc.ToFileDescriptorProto(koinospb.File_koinos_options_proto),
	}, set.File...)
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("sdkas: ABI types: %w", err)
	}
	return files, nil
}
