package kjson

import (
	"errors"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/reflect/protoreflect"

	koinospb "github.com/emberchain/ember/proto/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Hand-written decoders for the messages on the write path: every
// submit_transaction carries a transaction, and decoding it through
// protobuf reflection cost most of the gateway's time per call (a
// converter allocation per field, a reflective allocation per message).
// They set the generated structs' fields directly and follow the generic
// decoder exactly — field names (proto and JSON), unknown fields ignored,
// null as absent, the same errors at the same paths — which
// FuzzFastDecoders checks against the generic decoder. Operations other
// than call_contract are rare and go through the generic decoder.

type fastDecoder func(v *fastjson.Value, m protoreflect.Message, depth int, at *path) error

var fastDecoders map[protoreflect.FullName]fastDecoder

func init() {
	fastDecoders = map[protoreflect.FullName]fastDecoder{
		"koinos.protocol.transaction":             decodeTransaction,
		"koinos.protocol.transaction_header":      decodeTxHeader,
		"koinos.protocol.call_contract_operation": decodeCallContract,
	}
}

// fastObject checks depth and shape as decodeMessage does.
func fastObject(v *fastjson.Value, depth int, at *path) (*fastjson.Object, error) {
	if depth > MaxDepth {
		return nil, &FieldError{Path: at.String(), Err: errors.New("nested too deeply")}
	}
	obj, err := v.Object()
	if err != nil {
		if at == nil {
			return nil, errors.New("expected a JSON object")
		}
		return nil, &FieldError{Path: at.String(), Err: errors.New("expected a JSON object")}
	}
	return obj, nil
}

func fieldBytes(v *fastjson.Value, bt koinospb.BytesType, at *path) ([]byte, error) {
	b, err := v.StringBytes()
	if err != nil {
		return nil, &FieldError{Path: at.String(), Err: errors.New("expected a string")}
	}
	out, err := DecodeBytes(bt, string(b))
	if err != nil {
		return nil, &FieldError{Path: at.String(), Err: err}
	}
	return out, nil
}

func fieldUint(v *fastjson.Value, bits int, at *path) (uint64, error) {
	n, err := decodeUint(v, bits)
	if err != nil {
		return 0, &FieldError{Path: at.String(), Err: err}
	}
	return n, nil
}

func decodeTransaction(v *fastjson.Value, m protoreflect.Message, depth int, at *path) error {
	obj, err := fastObject(v, depth, at)
	if err != nil {
		return err
	}
	tx := m.Interface().(*protocol.Transaction)
	var ferr error
	obj.Visit(func(key []byte, fv *fastjson.Value) {
		if ferr != nil || fv.Type() == fastjson.TypeNull {
			return
		}
		switch string(key) {
		case "id":
			tx.Id, ferr = fieldBytes(fv, koinospb.BytesType_TRANSACTION_ID, &path{parent: at, name: "id", index: -1})
		case "header":
			if tx.Header == nil {
				tx.Header = &protocol.TransactionHeader{}
			}
			ferr = decodeTxHeader(fv, tx.Header.ProtoReflect(), depth+1, &path{parent: at, name: "header", index: -1})
		case "operations":
			ferr = decodeOperations(fv, tx, depth, at)
		case "signatures":
			arr, err := fv.Array()
			if err != nil {
				ferr = &FieldError{Path: (&path{parent: at, name: "signatures", index: -1}).String(), Err: errors.New("expected a JSON array")}
				return
			}
			for i, ev := range arr {
				b, err := fieldBytes(ev, koinospb.BytesType_BASE64, &path{parent: at, name: "signatures", index: i})
				if err != nil {
					ferr = err
					return
				}
				tx.Signatures = append(tx.Signatures, b)
			}
		}
	})
	return ferr
}

func decodeOperations(fv *fastjson.Value, tx *protocol.Transaction, depth int, at *path) error {
	arr, err := fv.Array()
	if err != nil {
		return &FieldError{Path: (&path{parent: at, name: "operations", index: -1}).String(), Err: errors.New("expected a JSON array")}
	}
	for i, ev := range arr {
		op := &protocol.Operation{}
		ep := &path{parent: at, name: "operations", index: i}
		if err := decodeOperation(ev, op, depth+1, ep); err != nil {
			return err
		}
		tx.Operations = append(tx.Operations, op)
	}
	return nil
}

// decodeOperation handles the common case, an object whose only member is
// call_contract; anything else goes to the generic decoder.
func decodeOperation(v *fastjson.Value, op *protocol.Operation, depth int, at *path) error {
	obj, err := fastObject(v, depth, at)
	if err != nil {
		return err
	}
	var cc *fastjson.Value
	simple := true
	obj.Visit(func(key []byte, fv *fastjson.Value) {
		switch string(key) {
		case "call_contract", "callContract":
			if fv.Type() != fastjson.TypeNull {
				if cc != nil {
					simple = false // two spellings: let the generic decoder decide
				}
				cc = fv
			}
		default:
			if fv.Type() != fastjson.TypeNull && infoFor(op.ProtoReflect().Descriptor()).byName[string(key)] != nil {
				simple = false
			}
		}
	})
	if !simple {
		return decodeMessage(v, op.ProtoReflect(), depth, at)
	}
	if cc == nil {
		return nil
	}
	c := &protocol.CallContractOperation{}
	if err := decodeCallContract(cc, c.ProtoReflect(), depth+1, &path{parent: at, name: "call_contract", index: -1}); err != nil {
		return err
	}
	op.Op = &protocol.Operation_CallContract{CallContract: c}
	return nil
}

func decodeCallContract(v *fastjson.Value, m protoreflect.Message, depth int, at *path) error {
	obj, err := fastObject(v, depth, at)
	if err != nil {
		return err
	}
	c := m.Interface().(*protocol.CallContractOperation)
	var ferr error
	obj.Visit(func(key []byte, fv *fastjson.Value) {
		if ferr != nil || fv.Type() == fastjson.TypeNull {
			return
		}
		switch string(key) {
		case "contract_id", "contractId":
			c.ContractId, ferr = fieldBytes(fv, koinospb.BytesType_CONTRACT_ID, &path{parent: at, name: "contract_id", index: -1})
		case "entry_point", "entryPoint":
			var n uint64
			n, ferr = fieldUint(fv, 32, &path{parent: at, name: "entry_point", index: -1})
			c.EntryPoint = uint32(n)
		case "args":
			c.Args, ferr = fieldBytes(fv, koinospb.BytesType_BASE64, &path{parent: at, name: "args", index: -1})
		}
	})
	return ferr
}

func decodeTxHeader(v *fastjson.Value, m protoreflect.Message, depth int, at *path) error {
	obj, err := fastObject(v, depth, at)
	if err != nil {
		return err
	}
	h := m.Interface().(*protocol.TransactionHeader)
	var ferr error
	obj.Visit(func(key []byte, fv *fastjson.Value) {
		if ferr != nil || fv.Type() == fastjson.TypeNull {
			return
		}
		switch string(key) {
		case "chain_id", "chainId":
			h.ChainId, ferr = fieldBytes(fv, koinospb.BytesType_BASE64, &path{parent: at, name: "chain_id", index: -1})
		case "rc_limit", "rcLimit":
			h.RcLimit, ferr = fieldUint(fv, 64, &path{parent: at, name: "rc_limit", index: -1})
		case "nonce":
			h.Nonce, ferr = fieldBytes(fv, koinospb.BytesType_BASE64, &path{parent: at, name: "nonce", index: -1})
		case "operation_merkle_root", "operationMerkleRoot":
			h.OperationMerkleRoot, ferr = fieldBytes(fv, koinospb.BytesType_BASE64, &path{parent: at, name: "operation_merkle_root", index: -1})
		case "payer":
			h.Payer, ferr = fieldBytes(fv, koinospb.BytesType_ADDRESS, &path{parent: at, name: "payer", index: -1})
		case "payee":
			h.Payee, ferr = fieldBytes(fv, koinospb.BytesType_ADDRESS, &path{parent: at, name: "payee", index: -1})
		}
	})
	return ferr
}
