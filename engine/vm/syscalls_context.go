package vm

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// The system calls that read the chain's context beyond head info: the
// transaction, operation and block being applied, accounts' nonces and
// mana, the resource prices, and merkle-root checks.

// maxFieldPath bounds get_*_field's dotted path, in parts: the messages
// it walks are a few levels deep.
const maxFieldPath = 8

// merkleHashFuel is the compute of one hash of verify_merkle_root, on top
// of the bytes moved.
const merkleHashFuel = 200

func (f *frame) context(sid chainpb.SystemCallId, args []byte) ([]byte, error) {
	h := f.call.Host
	switch sid {
	case chainpb.SystemCallId_get_transaction:
		tx := h.Transaction()
		if tx == nil {
			return nil, reversion("get_transaction: no transaction in a read")
		}
		return encoded((&chainpb.GetTransactionResult{Value: tx}).MarshalVT())
	case chainpb.SystemCallId_get_transaction_field:
		var a chainpb.GetTransactionFieldArguments
		if err := decoded(a.UnmarshalVT(args), "get_transaction_field"); err != nil {
			return nil, err
		}
		tx := h.Transaction()
		if tx == nil {
			return nil, reversion("get_transaction_field: no transaction in a read")
		}
		v, err := messageField(tx, a.Field)
		if err != nil {
			return nil, err
		}
		return encoded((&chainpb.GetTransactionFieldResult{Value: v}).MarshalVT())
	case chainpb.SystemCallId_get_block:
		b := h.Block()
		if b == nil {
			return nil, reversion("get_block: no block in a read")
		}
		return encoded((&chainpb.GetBlockResult{Value: b}).MarshalVT())
	case chainpb.SystemCallId_get_block_field:
		var a chainpb.GetBlockFieldArguments
		if err := decoded(a.UnmarshalVT(args), "get_block_field"); err != nil {
			return nil, err
		}
		b := h.Block()
		if b == nil {
			return nil, reversion("get_block_field: no block in a read")
		}
		v, err := messageField(b, a.Field)
		if err != nil {
			return nil, err
		}
		return encoded((&chainpb.GetBlockFieldResult{Value: v}).MarshalVT())
	case chainpb.SystemCallId_get_operation:
		op := h.Operation()
		if op == nil {
			return nil, koinos.Errorf(chainpb.ErrorCode_operation_not_found, "get_operation: no operation in a read")
		}
		return encoded((&chainpb.GetOperationResult{Value: op}).MarshalVT())
	case chainpb.SystemCallId_get_last_irreversible_block:
		return encoded((&chainpb.GetLastIrreversibleBlockResult{Value: h.HeadInfo().GetLastIrreversibleBlock()}).MarshalVT())
	case chainpb.SystemCallId_get_account_nonce:
		var a chainpb.GetAccountNonceArguments
		if err := decoded(a.UnmarshalVT(args), "get_account_nonce"); err != nil {
			return nil, err
		}
		if _, ok := koinos.AddressShape(a.Account); !ok {
			return nil, reversion("get_account_nonce: account of %d bytes is not an address", len(a.Account))
		}
		n, err := h.AccountNonce(a.Account)
		if err != nil {
			return nil, err
		}
		// Koinos keeps a nonce as a serialized value_type.
		v, err := encoded((&chainpb.ValueType{Kind: &chainpb.ValueType_Uint64Value{Uint64Value: n}}).MarshalVT())
		if err != nil {
			return nil, err
		}
		return encoded((&chainpb.GetAccountNonceResult{Value: v}).MarshalVT())
	case chainpb.SystemCallId_get_account_rc:
		var a chainpb.GetAccountRcArguments
		if err := decoded(a.UnmarshalVT(args), "get_account_rc"); err != nil {
			return nil, err
		}
		if _, ok := koinos.AddressShape(a.Account); !ok {
			return nil, reversion("get_account_rc: account of %d bytes is not an address", len(a.Account))
		}
		rc, err := h.AccountRC(a.Account)
		if err != nil {
			return nil, err
		}
		return encoded((&chainpb.GetAccountRcResult{Value: rc}).MarshalVT())
	case chainpb.SystemCallId_get_resource_limits:
		return encoded((&chainpb.GetResourceLimitsResult{Value: h.ResourceLimits()}).MarshalVT())
	default: // verify_merkle_root
		var a chainpb.VerifyMerkleRootArguments
		if err := decoded(a.UnmarshalVT(args), "verify_merkle_root"); err != nil {
			return nil, err
		}
		if !f.charge(uint64(len(a.Hashes)) * merkleHashFuel) {
			return nil, f.outOfCompute()
		}
		ok, err := verifyMerkleRoot(a.Root, a.Hashes)
		if err != nil {
			return nil, err
		}
		return encoded((&chainpb.VerifyMerkleRootResult{Value: ok}).MarshalVT())
	}
}

// verifyMerkleRoot reports whether root is the Koinos merkle root (the
// tree transaction roots use) of the SHA-256 multihashes hashes.
func verifyMerkleRoot(root []byte, hashes [][]byte) (bool, error) {
	want, err := koinos.ParseMultihash(root)
	if err != nil {
		return false, reversion("verify_merkle_root: root: %v", err)
	}
	leaves := make([]koinos.Digest, len(hashes))
	for i, h := range hashes {
		if leaves[i], err = koinos.ParseMultihash(h); err != nil {
			return false, reversion("verify_merkle_root: hash %d: %v", i, err)
		}
	}
	return koinos.MerkleRoot(leaves) == want, nil
}

// messageField is Koinos's get_*_field: the value at a dotted path of message
// fields ("header.payer"), as a koinos.chain.value_type. A field that is
// not there is field_not_found, a repeated one or a floating-point one
// cannot be given as a value (Koinos refuses them too).
func messageField(m proto.Message, path string) (*chainpb.ValueType, error) {
	parts := strings.Split(path, ".")
	if path == "" || len(parts) > maxFieldPath {
		return nil, koinos.Errorf(chainpb.ErrorCode_field_not_found, "field %q: an empty path, or deeper than %d", path, maxFieldPath)
	}
	msg := m.ProtoReflect()
	var fd protoreflect.FieldDescriptor
	for i, name := range parts {
		fd = msg.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return nil, koinos.Errorf(chainpb.ErrorCode_field_not_found, "field %q: %s has no field %q", path, msg.Descriptor().FullName(), name)
		}
		if i == len(parts)-1 {
			break
		}
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			return nil, koinos.Errorf(chainpb.ErrorCode_field_not_found, "field %q: %s is not a message", path, name)
		}
		msg = msg.Get(fd).Message()
	}
	if fd.IsList() || fd.IsMap() {
		return nil, koinos.Errorf(chainpb.ErrorCode_field_not_found, "field %q is repeated: read the whole message instead", path)
	}
	v := msg.Get(fd)
	out := &chainpb.ValueType{}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		out.Kind = &chainpb.ValueType_BoolValue{BoolValue: v.Bool()}
	case protoreflect.EnumKind:
		out.Kind = &chainpb.ValueType_Int32Value{Int32Value: int32(v.Enum())}
	case protoreflect.Int32Kind:
		out.Kind = &chainpb.ValueType_Int32Value{Int32Value: int32(v.Int())}
	case protoreflect.Sint32Kind:
		out.Kind = &chainpb.ValueType_Sint32Value{Sint32Value: int32(v.Int())}
	case protoreflect.Sfixed32Kind:
		out.Kind = &chainpb.ValueType_Sfixed32Value{Sfixed32Value: int32(v.Int())}
	case protoreflect.Int64Kind:
		out.Kind = &chainpb.ValueType_Int64Value{Int64Value: v.Int()}
	case protoreflect.Sint64Kind:
		out.Kind = &chainpb.ValueType_Sint64Value{Sint64Value: v.Int()}
	case protoreflect.Sfixed64Kind:
		out.Kind = &chainpb.ValueType_Sfixed64Value{Sfixed64Value: v.Int()}
	case protoreflect.Uint32Kind:
		out.Kind = &chainpb.ValueType_Uint32Value{Uint32Value: uint32(v.Uint())}
	case protoreflect.Fixed32Kind:
		out.Kind = &chainpb.ValueType_Fixed32Value{Fixed32Value: uint32(v.Uint())}
	case protoreflect.Uint64Kind:
		out.Kind = &chainpb.ValueType_Uint64Value{Uint64Value: v.Uint()}
	case protoreflect.Fixed64Kind:
		out.Kind = &chainpb.ValueType_Fixed64Value{Fixed64Value: v.Uint()}
	case protoreflect.StringKind:
		out.Kind = &chainpb.ValueType_StringValue{StringValue: v.String()}
	case protoreflect.BytesKind:
		out.Kind = &chainpb.ValueType_BytesValue{BytesValue: v.Bytes()}
	case protoreflect.MessageKind:
		a := &anypb.Any{}
		if err := anypb.MarshalFrom(a, v.Message().Interface(), proto.MarshalOptions{Deterministic: true}); err != nil {
			return nil, koinos.Errorf(chainpb.ErrorCode_internal_error, "field %q: %v", path, err)
		}
		out.Kind = &chainpb.ValueType_MessageValue{MessageValue: a}
	default:
		return nil, koinos.Errorf(chainpb.ErrorCode_field_not_found, "field %q has a floating-point type, which contracts cannot use", path)
	}
	return out, nil
}
