package contracts

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/bits"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/state"
	emberpb "github.com/emberchain/ember/proto/ember"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/proto/tokenabi"
)

// Entry points of koilib's utils.tokenAbi.
const (
	EntryName        uint32 = 0x82a3537f
	EntrySymbol      uint32 = 0xb76a7ca1
	EntryDecimals    uint32 = 0xee80fd2f
	EntryGetInfo     uint32 = 0xbd7f6850
	EntryTotalSupply uint32 = 0xb0da3934
	EntryBalanceOf   uint32 = 0x5c721497
	EntryTransfer    uint32 = 0x27f576ca
	EntryMint        uint32 = 0xdc6f17bb
	EntryBurn        uint32 = 0x859facc5
)

// Event names, as Koinos's token contracts emit them.
const (
	EventTransfer = "koinos.contracts.token.transfer_event"
	EventMint     = "koinos.contracts.token.mint_event"
	EventBurn     = "koinos.contracts.token.burn_event"
)

// Token is the native token at one contract id.
type Token struct {
	id        koinos.Address
	idBytes   []byte
	info      *emberpb.TokenInfo
	authority koinos.Address // zero: minting disabled
	costs     *emberpb.ComputeCosts
	regenMs   uint64
	abi       string
}

// NewToken builds the token described by the chain parameters.
func NewToken(p *emberpb.ChainParameters) (*Token, error) {
	id, err := koinos.ParseAddress(p.Token.GetContractId())
	if err != nil {
		return nil, fmt.Errorf("contracts: token contract id: %w", err)
	}
	t := &Token{id: id, idBytes: id.Bytes(), info: p.Token, costs: p.Compute, regenMs: p.ManaRegenMs}
	if len(p.Token.Authority) > 0 {
		if t.authority, err = koinos.ParseAddress(p.Token.Authority); err != nil {
			return nil, fmt.Errorf("contracts: token authority: %w", err)
		}
	}
	if t.abi, err = buildABI(); err != nil {
		return nil, err
	}
	return t, nil
}

// ID is the token's contract id.
func (t *Token) ID() koinos.Address { return t.id }

// ABI is the token's ABI in the JSON form that koilib's Contract reads from
// contract_meta_store.get_contract_meta.
func (t *Token) ABI() string { return t.abi }

// Call is the context of one contract call.
type Call struct {
	// State is read and, unless ReadOnly, written.
	State    *state.Delta
	Reader   state.Reader // used instead of State when ReadOnly
	ReadOnly bool
	// Authorized reports whether an account authorized this call: it
	// signed the transaction. An interface rather than a func so that
	// passing the verified transaction costs no closure per call.
	Authorized Authorizer
	// NowMs is the block time, for mana regeneration.
	NowMs uint64
	// Events receives the events the call emits.
	Events []*protocol.EventData
	// Compute accumulates the compute bandwidth used.
	Compute uint64
	// Disk accumulates the disk storage used: NewAccountDiskBytes for each
	// account record the call creates.
	Disk uint64
	// Arena, when set, supplies event structs (nil: each is allocated).
	Arena *Arena
}

// Authorizer is what Call.Authorized needs: *sigverify.VerifiedTx is one.
type Authorizer interface {
	SignedBy(koinos.Address) bool
}

// Arena hands out event structs in chunks, so a block of transfers makes a
// few allocations instead of three per transfer. Its memory lives as long
// as any event it handed out: the block's receipts hold them anyway.
type Arena struct {
	events []protocol.EventData
	slices [][]byte
	lists  []*protocol.EventData
	data   []byte
}

const arenaChunk = 256

func (a *Arena) event() *protocol.EventData {
	if a == nil {
		return &protocol.EventData{}
	}
	if len(a.events) == 0 {
		a.events = make([]protocol.EventData, arenaChunk)
	}
	e := &a.events[0]
	a.events = a.events[1:]
	return e
}

// eventList returns an empty event list with room for one event: most
// calls emit one, and a second append moves the list out of the arena.
func (a *Arena) eventList() []*protocol.EventData {
	if a == nil {
		return nil
	}
	if len(a.lists) == 0 {
		a.lists = make([]*protocol.EventData, arenaChunk)
	}
	out := a.lists[:0:1]
	a.lists = a.lists[1:]
	return out
}

// bytes returns n bytes, with cap n.
func (a *Arena) bytes(n int) []byte {
	if a == nil || n > arenaChunk {
		return make([]byte, n)
	}
	if len(a.data) < n {
		a.data = make([]byte, arenaChunk*64)
	}
	out := a.data[:n:n]
	a.data = a.data[n:]
	return out
}

// byteSlices returns a slice of n byte slices, with cap n.
func (a *Arena) byteSlices(n int) [][]byte {
	if a == nil || n > arenaChunk {
		return make([][]byte, n)
	}
	if len(a.slices) < n {
		a.slices = make([][]byte, arenaChunk*2)
	}
	out := a.slices[:n:n]
	a.slices = a.slices[n:]
	return out
}

// NewAccountDiskBytes is the disk storage charged for creating an account
// record: its 25-byte address key plus a full record.
const NewAccountDiskBytes = 64

func (c *Call) reader() state.Reader {
	if c.ReadOnly {
		return c.Reader
	}
	return c.State
}

func revert(code chainpb.ErrorCode, format string, args ...any) error {
	return koinos.Errorf(code, format, args...)
}

func reversion(format string, args ...any) error {
	return koinos.Errorf(chainpb.ErrorCode_reversion, format, args...)
}

// Call runs entry point ep with serialized args and returns the serialized
// result. Errors are *koinos.Error: reversions for anything the caller got
// wrong, internal errors when state cannot be read.
func (t *Token) Call(c *Call, ep uint32, args []byte) ([]byte, error) {
	switch ep {
	case EntryName:
		c.Compute += t.costs.TokenRead
		return marshal(&tokenabi.Str{Value: t.info.Name})
	case EntrySymbol:
		c.Compute += t.costs.TokenRead
		return marshal(&tokenabi.Str{Value: t.info.Symbol})
	case EntryDecimals:
		c.Compute += t.costs.TokenRead
		return marshal(&tokenabi.Uint32{Value: t.info.Decimals})
	case EntryGetInfo:
		c.Compute += t.costs.TokenRead
		return marshal(&tokenabi.Info{Name: t.info.Name, Symbol: t.info.Symbol, Decimals: t.info.Decimals, Description: t.info.Description})
	case EntryTotalSupply:
		c.Compute += t.costs.TokenRead
		return marshal(&tokenabi.Uint64{Value: c.reader().Supply()})
	case EntryBalanceOf:
		c.Compute += t.costs.TokenRead
		var a tokenabi.BalanceOfArgs
		if err := a.UnmarshalVT(args); err != nil {
			return nil, reversion("balance_of: arguments do not decode as token.balance_of_args: %v", err)
		}
		owner, err := koinos.ParseAddress(a.Owner)
		if err != nil {
			return nil, reversion("balance_of: owner: %v", err)
		}
		acct, _, err := c.reader().Account(owner)
		if err != nil {
			return nil, err
		}
		return marshal(&tokenabi.Uint64{Value: acct.Balance})
	case EntryTransfer, EntryMint, EntryBurn:
		if c.ReadOnly {
			return nil, revert(chainpb.ErrorCode_read_only_context, "token: entry point 0x%08x writes state and cannot be called read-only", ep)
		}
		c.Compute += t.costs.TokenTransfer
		switch ep {
		case EntryTransfer:
			return nil, t.transfer(c, args)
		case EntryMint:
			return nil, t.mint(c, args)
		default:
			return nil, t.burn(c, args)
		}
	}
	return nil, revert(chainpb.ErrorCode_unknown_operation, "token: unknown entry point 0x%08x", ep)
}

func marshal(m interface{ MarshalVT() ([]byte, error) }) ([]byte, error) {
	b, err := m.MarshalVT()
	if err != nil {
		return nil, koinos.Errorf(chainpb.ErrorCode_internal_error, "token: encode result: %v", err)
	}
	return b, nil
}

func (t *Token) transfer(c *Call, args []byte) error {
	// Unsafe decoding aliases args: transactions are immutable, and the
	// event below keeps pointing into them instead of copying.
	var a tokenabi.TransferArgs
	if err := a.UnmarshalVTUnsafe(args); err != nil {
		return reversion("transfer: arguments do not decode as token.transfer_args: %v", err)
	}
	from, ok := koinos.AddressShape(a.From)
	if !ok {
		return reversion("transfer: from: %v", koinos.ErrAddressLength)
	}
	to, ok := koinos.AddressShape(a.To)
	if !ok {
		return reversion("transfer: to: %v", koinos.ErrAddressLength)
	}
	if from == to {
		return reversion("transfer: cannot transfer to self")
	}
	// An authorized sender equals a signer's derived address, so its
	// checksum is right by construction.
	if !c.Authorized.SignedBy(from) {
		return reversion("transfer: from account %s has not authorized the transfer", from)
	}
	src, _, err := c.State.Account(from)
	if err != nil {
		return err
	}
	if src.Balance < a.Value {
		return reversion("transfer: account %s has insufficient balance (%d < %d)", from, src.Balance, a.Value)
	}
	// Tokens move with their mana, and only tokens whose mana is unspent may
	// move: otherwise mana could be spent, the tokens sent on with fresh
	// mana, and spent again (Koinos's KOIN rule).
	mana := src.CurrentMana(c.NowMs, t.regenMs)
	if mana < a.Value {
		return reversion("transfer: account %s has insufficient mana for the transfer (%d < %d); mana regenerates over time", from, mana, a.Value)
	}
	dst, found, err := c.State.Account(to)
	if err != nil {
		return err
	}
	if !found {
		// A new account: its address is checked once, here; accounts in
		// state were all checked when created.
		if _, err := koinos.ParseAddress(a.To); err != nil {
			return reversion("transfer: to: %v", err)
		}
		c.Disk += NewAccountDiskBytes
	}
	newBal, carry := bits.Add64(dst.Balance, a.Value, 0)
	if carry != 0 {
		return reversion("transfer: balance of %s would overflow", to)
	}
	dstMana := dst.CurrentMana(c.NowMs, t.regenMs)
	src.Balance -= a.Value
	src.Mana, src.ManaUpdatedMs = mana-a.Value, c.NowMs
	dst.Balance = newBal
	dst.Mana, dst.ManaUpdatedMs = dstMana+a.Value, c.NowMs
	c.State.SetAccount(from, src)
	c.State.SetAccount(to, dst)
	// Marshaled here, into the arena: through an interface the event
	// would escape, one allocation more per transfer.
	ev := tokenpb.TransferEvent{From: a.From, To: a.To, Value: a.Value}
	data := c.Arena.bytes(ev.SizeVT())
	if _, err := ev.MarshalToSizedBufferVT(data); err != nil {
		return koinos.Errorf(chainpb.ErrorCode_internal_error, "token: encode event: %v", err)
	}
	t.emit(c, EventTransfer, data, a.To, a.From)
	return nil
}

func (t *Token) mint(c *Call, args []byte) error {
	var a tokenabi.MintArgs
	if err := a.UnmarshalVT(args); err != nil {
		return reversion("mint: arguments do not decode as token.mint_args: %v", err)
	}
	to, err := koinos.ParseAddress(a.To)
	if err != nil {
		return reversion("mint: to: %v", err)
	}
	if t.authority.IsZero() || !c.Authorized.SignedBy(t.authority) {
		return reversion("mint: only the token authority set in genesis may mint")
	}
	supply, carry := bits.Add64(c.State.Supply(), a.Value, 0)
	if carry != 0 {
		return reversion("mint: total supply would overflow")
	}
	dst, found, err := c.State.Account(to)
	if err != nil {
		return err
	}
	if !found {
		c.Disk += NewAccountDiskBytes
	}
	mana := dst.CurrentMana(c.NowMs, t.regenMs)
	dst.Balance += a.Value // cannot overflow: balance <= supply
	dst.Mana, dst.ManaUpdatedMs = mana+a.Value, c.NowMs
	c.State.SetAccount(to, dst)
	c.State.SetSupply(supply)
	return t.emitMessage(c, EventMint, &tokenpb.MintEvent{To: to.Bytes(), Value: a.Value}, to.Bytes())
}

func (t *Token) burn(c *Call, args []byte) error {
	var a tokenabi.BurnArgs
	if err := a.UnmarshalVT(args); err != nil {
		return reversion("burn: arguments do not decode as token.burn_args: %v", err)
	}
	from, err := koinos.ParseAddress(a.From)
	if err != nil {
		return reversion("burn: from: %v", err)
	}
	if !c.Authorized.SignedBy(from) {
		return reversion("burn: from account %s has not authorized the burn", from)
	}
	src, _, err := c.State.Account(from)
	if err != nil {
		return err
	}
	if src.Balance < a.Value {
		return reversion("burn: account %s has insufficient balance (%d < %d)", from, src.Balance, a.Value)
	}
	mana := src.CurrentMana(c.NowMs, t.regenMs)
	if mana < a.Value {
		return reversion("burn: account %s has insufficient mana for the burn (%d < %d)", from, mana, a.Value)
	}
	src.Balance -= a.Value
	src.Mana, src.ManaUpdatedMs = mana-a.Value, c.NowMs
	c.State.SetAccount(from, src)
	c.State.SetSupply(c.State.Supply() - a.Value)
	return t.emitMessage(c, EventBurn, &tokenpb.BurnEvent{From: from.Bytes(), Value: a.Value}, from.Bytes())
}

// emitMessage marshals ev and appends it as an event.
func (t *Token) emitMessage(c *Call, name string, ev interface{ MarshalVT() ([]byte, error) }, impacted ...[]byte) error {
	data, err := ev.MarshalVT()
	if err != nil {
		return koinos.Errorf(chainpb.ErrorCode_internal_error, "token: encode event: %v", err)
	}
	t.emit(c, name, data, impacted...)
	return nil
}

// emit appends an event with data, already marshaled. impacted must not
// be modified afterwards: it is kept as is (usually slices of the
// transaction's own arguments).
func (t *Token) emit(c *Call, name string, data []byte, impacted ...[]byte) {
	e := c.Arena.event()
	e.Source, e.Name, e.Data = t.idBytes, name, data
	e.Impacted = c.Arena.byteSlices(len(impacted))
	copy(e.Impacted, impacted)
	if c.Events == nil {
		c.Events = c.Arena.eventList()
	}
	c.Events = append(c.Events, e)
}

// ABIMethod is one method of a Koinos ABI. It carries each field under
// both spellings in use: koilib reads entry_point (a number) and
// read_only; Koinos's own tools (koinos-cli) read "entry-point" (a hex
// string, "0x5c721497") and "read-only". Each ignores the other's keys.
// internal/sdkas writes its contracts' ABIs with it too.
type ABIMethod struct {
	Argument       string `json:"argument"`
	Return         string `json:"return"`
	Description    string `json:"description"`
	ReadOnly       bool   `json:"read_only"`
	EntryPoint     uint32 `json:"entry_point"`
	ReadOnlyKoinos bool   `json:"read-only"`
	EntryPointHex  string `json:"entry-point"`
	// DefaultOutput is what koilib returns for a read whose result is
	// empty (proto3 writes a zero balance as no bytes at all).
	DefaultOutput map[string]any `json:"default_output,omitempty"`
}

// Names of the empty messages Koinos's ABIs use where a method takes no
// arguments or returns nothing. koinos-cli looks every argument and result
// type up by name (v2.0.0 refuses an empty one), and koilib serializes
// arguments with the named type, so both need the messages in "types".
const (
	NopArguments = "koinos.chain.nop_arguments"
	NopResult    = "koinos.chain.nop_result"
)

// nopFile describes the empty messages under the file name and package
// Koinos declares them in (koinos/chain/system_calls.proto): koinos-cli
// keys the files it knows by name, so a file of the same name replaces its
// own copy instead of defining the messages twice. Nothing imports that
// file, so this reduced copy resolves everywhere.
func nopFile() *descriptorpb.FileDescriptorProto {
	return &descriptorpb.FileDescriptorProto{
		Name:    proto.String("koinos/chain/system_calls.proto"),
		Package: proto.String("koinos.chain"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("nop_arguments")},
			{Name: proto.String("nop_result")},
		},
	}
}

// NewABIMethod is a method under both spellings; an empty argument or
// result type names Koinos's empty messages (NopArguments, NopResult).
func NewABIMethod(argument, result, description string, readOnly bool, ep uint32) ABIMethod {
	if argument == "" {
		argument = NopArguments
	}
	if result == "" {
		result = NopResult
	}
	return ABIMethod{
		Argument: argument, Return: result, Description: description,
		ReadOnly: readOnly, ReadOnlyKoinos: readOnly,
		EntryPoint: ep, EntryPointHex: fmt.Sprintf("0x%08x", ep),
	}
}

// buildABI writes the ABI koilib and koinos-cli expect: methods by name
// with entry points and message types, and "types", the base64
// FileDescriptorSet of the messages they name (koilib turns it back into
// .proto text; koinos-cli builds a registry from it).
func buildABI() (string, error) {
	methods := map[string]ABIMethod{
		"name":        NewABIMethod("", "token.str", "Get name of the token", true, EntryName),
		"symbol":      NewABIMethod("", "token.str", "Get the symbol of the token", true, EntrySymbol),
		"decimals":    NewABIMethod("", "token.uint32", "Get the decimals of the token", true, EntryDecimals),
		"getInfo":     NewABIMethod("", "token.info", "Get name, symbol and decimals", true, EntryGetInfo),
		"totalSupply": NewABIMethod("", "token.uint64", "Get total supply", true, EntryTotalSupply),
		"balanceOf":   NewABIMethod("token.balance_of_args", "token.uint64", "Get balance of an account", true, EntryBalanceOf),
		"transfer":    NewABIMethod("token.transfer_args", "", "Transfer tokens", false, EntryTransfer),
		"mint":        NewABIMethod("token.mint_args", "", "Mint new tokens (token authority only)", false, EntryMint),
		"burn":        NewABIMethod("token.burn_args", "", "Burn tokens", false, EntryBurn),
	}
	// Only the token file and the empty messages: koilib turns the set back
	// into .proto text for protobufjs, which cannot resolve
	// koinos/options.proto's extension of google.protobuf.FieldOptions;
	// koilib's own tokenAbi leaves it out too and reads the (koinos.btype)
	// options by name.
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(tokenabi.File_tokenabi_token_proto),
		nopFile(),
	}}
	b, err := proto.Marshal(set)
	if err != nil {
		return "", fmt.Errorf("contracts: token ABI types: %w", err)
	}
	out, err := json.Marshal(struct {
		Methods map[string]ABIMethod `json:"methods"`
		Types   string               `json:"types"`
	}{methods, base64.StdEncoding.EncodeToString(b)})
	if err != nil {
		return "", fmt.Errorf("contracts: token ABI: %w", err)
	}
	return string(out), nil
}
