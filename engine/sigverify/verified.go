package sigverify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Limits are the stateless bounds a transaction must meet before its
// signatures are checked. They come from genesis.
type Limits struct {
	ChainID             []byte
	MaxTransactionBytes int
	MaxOperations       int
	MaxSignatures       int
}

// VerifiedTx is a transaction whose form, id, operation merkle root and
// signatures have been checked, and whose payer (and payee, when it holds the
// nonce) signed it. Only this package constructs one, so holding a
// *VerifiedTx is proof of those checks; the engine applies nothing else.
// It is immutable and safe to share.
type VerifiedTx struct {
	tx           *protocol.Transaction
	id           koinos.Digest
	sigsDigest   koinos.Digest
	payer        koinos.Address
	payee        koinos.Address // zero when the header has none
	nonce        uint64
	size         int
	signers      []koinos.Address
	hasEd25519   bool
	hasSecp256k1 bool
}

// Tx returns the transaction. Callers must not modify it.
func (v *VerifiedTx) Tx() *protocol.Transaction { return v.tx }

// ID is the digest of the transaction id (sha256 of the header).
func (v *VerifiedTx) ID() koinos.Digest { return v.id }

// SignaturesDigest is sha256 of the concatenated signatures, the second
// merkle leaf of the transaction in a block.
func (v *VerifiedTx) SignaturesDigest() koinos.Digest { return v.sigsDigest }

// Payer is the account that pays the transaction's resources.
func (v *VerifiedTx) Payer() koinos.Address { return v.payer }

// Payee is the header's payee, or the zero address.
func (v *VerifiedTx) Payee() koinos.Address { return v.payee }

// NonceAccount is the account whose nonce the transaction uses: the payee
// when set and different from the payer, otherwise the payer (Koinos rule).
func (v *VerifiedTx) NonceAccount() koinos.Address {
	if !v.payee.IsZero() && v.payee != v.payer {
		return v.payee
	}
	return v.payer
}

// Nonce is the decoded header nonce.
func (v *VerifiedTx) Nonce() uint64 { return v.nonce }

// RcLimit is the most resource credits the payer allows to be charged.
func (v *VerifiedTx) RcLimit() uint64 { return v.tx.Header.RcLimit }

// Size is the serialized size of the transaction in bytes, which is also
// the network bandwidth it uses.
func (v *VerifiedTx) Size() int { return v.size }

// Signers are the addresses the signatures stand for, in signature order.
// The slice is shared (the Pool's cache hands the same one to every
// VerifiedTx of a transaction): callers must not modify it.
func (v *VerifiedTx) Signers() []koinos.Address { return v.signers }

// SignedBy reports whether one of the signatures stands for a.
func (v *VerifiedTx) SignedBy(a koinos.Address) bool {
	for _, s := range v.signers {
		if s == a {
			return true
		}
	}
	return false
}

// Schemes reports which signature schemes the transaction uses.
func (v *VerifiedTx) Schemes() (secp256k1, ed25519 bool) { return v.hasSecp256k1, v.hasEd25519 }

func malformed(format string, args ...any) error {
	return koinos.Errorf(chainpb.ErrorCode_malformed_transaction, format, args...)
}

// Precheck runs every check that needs neither state nor signature
// verification, and computes the id and merkle digests. The returned value
// has no signers yet and must not escape this package unverified.
func precheck(tx *protocol.Transaction, lim *Limits) (*VerifiedTx, error) {
	if tx == nil || tx.Header == nil {
		return nil, malformed("transaction has no header")
	}
	h := tx.Header
	size := tx.SizeVT()
	if lim.MaxTransactionBytes > 0 && size > lim.MaxTransactionBytes {
		return nil, malformed("transaction is %d bytes, above the limit of %d", size, lim.MaxTransactionBytes)
	}
	if !bytes.Equal(h.ChainId, lim.ChainID) {
		return nil, malformed("transaction chain_id does not match this chain (expected %s)", kjsonBase64(lim.ChainID))
	}
	if h.RcLimit == 0 {
		return nil, malformed("rc_limit must be above 0")
	}
	v := &VerifiedTx{tx: tx, size: size}
	// Only the form of payer and payee is checked here, not their checksums:
	// authorization requires each to equal an address derived from a
	// signature's key, which has a right checksum by construction. A bad
	// checksum is reported when authorization fails (badAddress).
	var ok bool
	if v.payer, ok = koinos.AddressShape(h.Payer); !ok {
		return nil, malformed("payer: %v", addressErr(h.Payer))
	}
	if len(h.Payee) > 0 {
		if v.payee, ok = koinos.AddressShape(h.Payee); !ok {
			return nil, malformed("payee: %v", addressErr(h.Payee))
		}
	}
	var err error
	if v.nonce, err = koinos.DecodeNonce(h.Nonce); err != nil {
		return nil, koinos.Errorf(chainpb.ErrorCode_invalid_nonce, "%v", err)
	}
	if len(tx.Operations) == 0 {
		return nil, malformed("transaction has no operations")
	}
	if lim.MaxOperations > 0 && len(tx.Operations) > lim.MaxOperations {
		return nil, malformed("transaction has %d operations, above the limit of %d", len(tx.Operations), lim.MaxOperations)
	}
	for i, op := range tx.Operations {
		if op == nil || op.Op == nil {
			return nil, malformed("operation %d is empty", i)
		}
	}
	opRoot := koinos.OperationMerkleRoot(tx.Operations)
	if !bytes.Equal(h.OperationMerkleRoot, opRoot.Multihash()) {
		return nil, malformed("operation_merkle_root does not match the operations")
	}
	v.id = koinos.TransactionID(h)
	if len(tx.Id) == 0 {
		return nil, malformed("transaction id is missing")
	}
	if !bytes.Equal(tx.Id, v.id.Multihash()) {
		return nil, malformed("transaction id does not match its header (expected 0x%x)", v.id.Multihash())
	}
	if len(tx.Signatures) == 0 {
		return nil, koinos.Errorf(chainpb.ErrorCode_invalid_signature, "transaction has no signatures")
	}
	if lim.MaxSignatures > 0 && len(tx.Signatures) > lim.MaxSignatures {
		return nil, malformed("transaction has %d signatures, above the limit of %d", len(tx.Signatures), lim.MaxSignatures)
	}
	for i, s := range tx.Signatures {
		switch keys.SchemeOf(s) {
		case keys.SchemeSecp256k1:
			v.hasSecp256k1 = true
		case keys.SchemeEd25519:
			v.hasEd25519 = true
		default:
			return nil, koinos.Errorf(chainpb.ErrorCode_invalid_signature, "signature %d: %v", i, keys.ErrSignatureForm)
		}
	}
	v.sigsDigest = koinos.SignaturesDigest(tx.Signatures)
	return v, nil
}

// authorize checks that the signers include the payer and, when the payee
// holds the nonce, the payee.
func (v *VerifiedTx) authorize() error {
	return authorizeSigners(v.payer, v.NonceAccount(), v.signers)
}

// authorizeSigners is authorize over bare addresses, for the Pool's
// workers, which hold no VerifiedTx.
func authorizeSigners(payer, nonceAccount koinos.Address, signers []koinos.Address) error {
	if !slices.Contains(signers, payer) {
		if err := badAddress("payer", payer); err != nil {
			return err
		}
		return koinos.Errorf(chainpb.ErrorCode_authorization_failure, "transaction is not signed by its payer %s", payer)
	}
	if nonceAccount != payer && !slices.Contains(signers, nonceAccount) {
		if err := badAddress("payee", nonceAccount); err != nil {
			return err
		}
		return koinos.Errorf(chainpb.ErrorCode_authorization_failure, "transaction uses the nonce of payee %s but is not signed by it", nonceAccount)
	}
	return nil
}

// badAddress explains an authorization failure caused by an address with a
// wrong checksum, which precheck lets through to save the hashing.
func badAddress(field string, a koinos.Address) error {
	if _, err := koinos.ParseAddress(a[:]); err != nil {
		return malformed("%s: %v", field, err)
	}
	return nil
}

// addressErr says why b is not an address.
func addressErr(b []byte) error {
	_, err := koinos.ParseAddress(b)
	return err
}

// signatureError is the error Verify returns for signature i failing with
// err; the Pool builds the same one.
func signatureError(i int, err error) error {
	return koinos.Errorf(chainpb.ErrorCode_invalid_signature, "signature %d: %v", i, err)
}

// Verify checks one transaction completely on the calling goroutine: the
// stateless checks, every signature, and authorization.
func Verify(tx *protocol.Transaction, lim *Limits) (*VerifiedTx, error) {
	v, err := precheck(tx, lim)
	if err != nil {
		return nil, err
	}
	if err := v.verifySignatures(); err != nil {
		return nil, err
	}
	return v, nil
}

// verifySignatures checks every signature of a prechecked transaction, in
// order, and authorization. On failure v must be dropped: its signers are
// partial.
func (v *VerifiedTx) verifySignatures() error {
	v.signers = make([]koinos.Address, len(v.tx.Signatures))
	for i, s := range v.tx.Signatures {
		a, err := keys.Verify(s, v.id)
		if err != nil {
			return signatureError(i, err)
		}
		v.signers[i] = a
	}
	return v.authorize()
}

// TransactionMerkleRoot is the root a block header commits its
// transactions to: two leaves per transaction, in order, its id digest and
// its signatures digest (koinos.TransactionMerkleRoot from the digests
// precheck already computed).
func TransactionMerkleRoot(txs []*VerifiedTx) koinos.Digest {
	leaves := make([]koinos.Digest, 0, 2*len(txs))
	for _, v := range txs {
		leaves = append(leaves, v.id, v.sigsDigest)
	}
	return koinos.MerkleRoot(leaves)
}

// checkTransactionMerkleRoot compares a block's transaction merkle root
// with the root computed from its transactions.
func checkTransactionMerkleRoot(h *protocol.BlockHeader, root koinos.Digest) error {
	if !bytes.Equal(h.TransactionMerkleRoot, root.Multihash()) {
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block transaction_merkle_root does not match its transactions")
	}
	return nil
}

// VerifiedBlockHeader is a block whose id matches its header and whose
// signature stands for its header's signer. Transactions are verified
// separately.
type VerifiedBlockHeader struct {
	ID     koinos.Digest
	Signer koinos.Address
}

// VerifyBlockHeader checks a block's id and signature.
func VerifyBlockHeader(b *protocol.Block) (VerifiedBlockHeader, error) {
	var out VerifiedBlockHeader
	if b == nil || b.Header == nil {
		return out, koinos.Errorf(chainpb.ErrorCode_malformed_block, "block has no header")
	}
	out.ID = koinos.BlockID(b.Header)
	if !bytes.Equal(b.Id, out.ID.Multihash()) {
		return out, koinos.Errorf(chainpb.ErrorCode_malformed_block, "block id does not match its header (expected 0x%x)", out.ID.Multihash())
	}
	signer, err := koinos.ParseAddress(b.Header.Signer)
	if err != nil {
		return out, koinos.Errorf(chainpb.ErrorCode_malformed_block, "block signer: %v", err)
	}
	got, err := keys.Verify(b.Signature, out.ID)
	if err != nil {
		return out, koinos.Errorf(chainpb.ErrorCode_invalid_signature, "block signature: %v", err)
	}
	if got != signer {
		return out, koinos.Errorf(chainpb.ErrorCode_invalid_signature, "block is signed by %s, not by its signer %s", got, signer)
	}
	out.Signer = signer
	return out, nil
}

func kjsonBase64(b []byte) string { return fmt.Sprintf("%q", base64URL(b)) }

func base64URL(b []byte) string { return base64.URLEncoding.EncodeToString(b) }

// Restore rebuilds a VerifiedTx for a transaction this node verified before
// and wrote to its own store, with the signer addresses recorded then. It
// repeats the stateless checks but not the signature checks: the store is
// trusted, as a database is. Only restart replay and store reads may call
// it; anything from outside the node goes through Verify or the Pool.
func Restore(tx *protocol.Transaction, signers []koinos.Address, lim *Limits) (*VerifiedTx, error) {
	v, err := precheck(tx, lim)
	if err != nil {
		return nil, err
	}
	if len(signers) != len(tx.Signatures) {
		return nil, fmt.Errorf("sigverify: stored transaction 0x%x has %d signatures but %d recorded signers", v.id.Multihash(), len(tx.Signatures), len(signers))
	}
	v.signers = signers
	if err := v.authorize(); err != nil {
		return nil, err
	}
	return v, nil
}

// VerifiedBlock is a block whose id and producer signature have been
// checked, whose transactions are the ones its header commits to (the
// transaction merkle root), and whose every transaction has been checked
// statelessly. Whether it extends the chain is the engine's question.
type VerifiedBlock struct {
	Block *protocol.Block
	VerifiedBlockHeader
	Txs []*VerifiedTx
}

// MaxBlockTransactions is set by the limits of the chain; VerifyBlock
// refuses blocks with more before verifying anything.
func checkBlockForm(b *protocol.Block, maxTxs int) error {
	if b == nil || b.Header == nil {
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block has no header")
	}
	h := b.Header
	switch {
	case len(b.Id) == 0:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block id is missing")
	case len(h.Previous) == 0:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block header.previous is missing")
	case h.Height == 0:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block header.height is missing")
	case h.Timestamp == 0:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block header.timestamp is missing")
	case len(h.PreviousStateMerkleRoot) == 0:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block header.previous_state_merkle_root is missing")
	case len(h.TransactionMerkleRoot) == 0:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block header.transaction_merkle_root is missing")
	case len(b.Signature) == 0:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block signature is missing")
	case maxTxs > 0 && len(b.Transactions) > maxTxs:
		return koinos.Errorf(chainpb.ErrorCode_malformed_block, "block has %d transactions, above the limit of %d", len(b.Transactions), maxTxs)
	}
	return nil
}

// VerifyBlock checks a block on the calling goroutine, in this order, and
// reports the first failure: its form, id and producer signature; the
// stateless checks of every transaction; the transaction merkle root; the
// signatures of every transaction. The root is checked before any
// transaction signature, so that a genuine header replayed with other
// transactions costs hashing, not thousands of signature checks. The Pool
// does the same in parallel, skips transactions it has verified before,
// and returns the same result.
func VerifyBlock(b *protocol.Block, lim *Limits, maxTxs int) (*VerifiedBlock, error) {
	if err := checkBlockForm(b, maxTxs); err != nil {
		return nil, err
	}
	hdr, err := VerifyBlockHeader(b)
	if err != nil {
		return nil, err
	}
	vb := &VerifiedBlock{Block: b, VerifiedBlockHeader: hdr, Txs: make([]*VerifiedTx, len(b.Transactions))}
	for i, tx := range b.Transactions {
		if vb.Txs[i], err = precheck(tx, lim); err != nil {
			return nil, wrapTxErr(i, err)
		}
	}
	if err := checkTransactionMerkleRoot(b.Header, TransactionMerkleRoot(vb.Txs)); err != nil {
		return nil, err
	}
	for i, v := range vb.Txs {
		if err := v.verifySignatures(); err != nil {
			return nil, wrapTxErr(i, err)
		}
	}
	return vb, nil
}

// RestoreBlock rebuilds a VerifiedBlock read back from this node's store
// (see Restore).
func RestoreBlock(b *protocol.Block, signers [][]koinos.Address, lim *Limits) (*VerifiedBlock, error) {
	if err := checkBlockForm(b, 0); err != nil {
		return nil, err
	}
	if len(signers) != len(b.Transactions) {
		return nil, fmt.Errorf("sigverify: stored block has %d transactions but signers for %d", len(b.Transactions), len(signers))
	}
	id := koinos.BlockID(b.Header)
	signer, err := koinos.ParseAddress(b.Header.Signer)
	if err != nil {
		return nil, err
	}
	vb := &VerifiedBlock{Block: b, VerifiedBlockHeader: VerifiedBlockHeader{ID: id, Signer: signer}, Txs: make([]*VerifiedTx, len(b.Transactions))}
	for i, tx := range b.Transactions {
		if vb.Txs[i], err = Restore(tx, signers[i], lim); err != nil {
			return nil, wrapTxErr(i, err)
		}
	}
	if err := checkTransactionMerkleRoot(b.Header, TransactionMerkleRoot(vb.Txs)); err != nil {
		return nil, err
	}
	return vb, nil
}

// wrapTxErr names the transaction of a block that failed, keeping its code.
func wrapTxErr(i int, err error) error {
	if ke, ok := err.(*koinos.Error); ok {
		return &koinos.Error{Code: ke.Code, Message: fmt.Sprintf("transaction %d: %s", i, ke.Message), Logs: ke.Logs}
	}
	return fmt.Errorf("transaction %d: %w", i, err)
}
