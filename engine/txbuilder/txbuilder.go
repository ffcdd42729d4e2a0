package txbuilder

import (
	"errors"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/proto/tokenabi"
)

// Header is what a transaction header needs besides the operations.
type Header struct {
	ChainID []byte // multihash, from chain.get_chain_id
	Nonce   uint64 // the payer's (or payee's) last nonce + 1
	RcLimit uint64
	Payer   koinos.Address
	Payee   koinos.Address // zero: none; the nonce is the payer's
}

// TransferOp is a call of the token's transfer entry point.
func TransferOp(token, from, to koinos.Address, value uint64) *protocol.Operation {
	args, _ := (&tokenabi.TransferArgs{From: from.Bytes(), To: to.Bytes(), Value: value}).MarshalVT()
	return CallOp(token, contracts.EntryTransfer, args)
}

// CallOp is a call_contract operation.
func CallOp(contract koinos.Address, entryPoint uint32, args []byte) *protocol.Operation {
	return &protocol.Operation{Op: &protocol.Operation_CallContract{CallContract: &protocol.CallContractOperation{
		ContractId: contract.Bytes(), EntryPoint: entryPoint, Args: args,
	}}}
}

// Build assembles an unsigned transaction: header with the operation merkle
// root, and id.
func Build(h Header, ops ...*protocol.Operation) (*protocol.Transaction, error) {
	if len(ops) == 0 {
		return nil, errors.New("txbuilder: a transaction needs at least one operation")
	}
	hdr := &protocol.TransactionHeader{
		ChainId:             h.ChainID,
		RcLimit:             h.RcLimit,
		Nonce:               koinos.EncodeNonce(h.Nonce),
		OperationMerkleRoot: koinos.OperationMerkleRoot(ops).Multihash(),
		Payer:               h.Payer.Bytes(),
	}
	if !h.Payee.IsZero() {
		hdr.Payee = h.Payee.Bytes()
	}
	return &protocol.Transaction{Id: koinos.TransactionID(hdr).Multihash(), Header: hdr, Operations: ops}, nil
}

// Sign appends each signer's signature over the transaction id.
func Sign(tx *protocol.Transaction, signers ...keys.Signer) {
	d, _ := koinos.ParseMultihash(tx.Id)
	for _, s := range signers {
		tx.Signatures = append(tx.Signatures, s.Sign(d))
	}
}

// Transfer builds and signs a token transfer from the signer's account.
func Transfer(signer keys.Signer, token, to koinos.Address, value uint64, h Header) (*protocol.Transaction, error) {
	if h.Payer.IsZero() {
		h.Payer = signer.Address()
	}
	tx, err := Build(h, TransferOp(token, signer.Address(), to, value))
	if err != nil {
		return nil, err
	}
	Sign(tx, signer)
	return tx, nil
}
