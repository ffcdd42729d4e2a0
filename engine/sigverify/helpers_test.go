package sigverify

import (
	"fmt"
	"math/big"
	"slices"
	"testing"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// fixture holds keys and limits for building transactions and blocks.
type fixture struct {
	lim     *Limits
	token   koinos.Address
	secp    []keys.Signer
	ed      []keys.Signer
	all     []keys.Signer
	prod    keys.Signer
	chainID []byte
}

func newFixture(tb testing.TB, n int) *fixture {
	tb.Helper()
	chainID := koinos.Sum256([]byte("sigverify-test-chain")).Multihash()
	f := &fixture{
		lim:     &Limits{ChainID: chainID, MaxTransactionBytes: 1 << 16, MaxOperations: 16, MaxSignatures: 8},
		token:   koinos.AddressFromKey([]byte("token")),
		prod:    keys.Ed25519FromSeed(seed("producer")),
		chainID: chainID,
	}
	for i := 0; i < n; i++ {
		s, err := keys.Secp256k1FromBytes(seed(fmt.Sprint("secp", i)))
		if err != nil {
			tb.Fatal(err)
		}
		e := keys.Ed25519FromSeed(seed(fmt.Sprint("ed", i)))
		f.secp, f.ed = append(f.secp, s), append(f.ed, e)
		f.all = append(f.all, s, e)
	}
	return f
}

func seed(s string) []byte {
	d := koinos.Sum256([]byte(s))
	return d[:]
}

// tx builds a transfer paid by payer, with an optional payee holding the
// nonce, signed by signers (payer alone when none are given).
func (f *fixture) tx(tb testing.TB, payer keys.Signer, payee keys.Signer, nonce uint64, signers ...keys.Signer) *protocol.Transaction {
	tb.Helper()
	h := txbuilder.Header{ChainID: f.chainID, Nonce: nonce, RcLimit: 1_000_000, Payer: payer.Address()}
	if payee != nil {
		h.Payee = payee.Address()
	}
	tx, err := txbuilder.Build(h, txbuilder.TransferOp(f.token, payer.Address(), f.token, nonce))
	if err != nil {
		tb.Fatal(err)
	}
	if len(signers) == 0 {
		signers = []keys.Signer{payer}
	}
	txbuilder.Sign(tx, signers...)
	return tx
}

// block wraps txs in a block signed by the producer; mutate, when set,
// edits it before the id and signature are computed.
func (f *fixture) block(txs []*protocol.Transaction, mutate func(*protocol.Block)) *protocol.Block {
	b := &protocol.Block{
		Header: &protocol.BlockHeader{
			Previous:                koinos.ZeroMultihash(),
			Height:                  1,
			Timestamp:               1_700_000_000_000,
			PreviousStateMerkleRoot: koinos.Sum256(nil).Multihash(),
			TransactionMerkleRoot:   koinos.TransactionMerkleRoot(txs).Multihash(),
			Signer:                  f.prod.Address().Bytes(),
		},
		Transactions: txs,
	}
	if mutate != nil {
		mutate(b)
	}
	id := koinos.BlockID(b.Header)
	b.Id = id.Multihash()
	b.Signature = f.prod.Sign(id)
	return b
}

// sameResult fails unless two verification results are identical: same
// error (code and text), or VerifiedTx values with the same contents.
func sameResult(tb testing.TB, what string, v1 *VerifiedTx, e1 error, v2 *VerifiedTx, e2 error) {
	tb.Helper()
	if (e1 == nil) != (e2 == nil) {
		tb.Fatalf("%s: Verify says %v, Pool says %v", what, e1, e2)
	}
	if e1 != nil {
		if e1.Error() != e2.Error() || koinos.CodeOf(e1) != koinos.CodeOf(e2) {
			tb.Fatalf("%s: errors differ:\n Verify: %v (code %v)\n Pool:   %v (code %v)", what, e1, koinos.CodeOf(e1), e2, koinos.CodeOf(e2))
		}
		if v1 != nil || v2 != nil {
			tb.Fatalf("%s: a VerifiedTx was returned with an error", what)
		}
		return
	}
	s1, e1s := v1.Schemes()
	s2, e2s := v2.Schemes()
	if v1.Tx() != v2.Tx() || v1.ID() != v2.ID() || v1.SignaturesDigest() != v2.SignaturesDigest() ||
		v1.Payer() != v2.Payer() || v1.Payee() != v2.Payee() || v1.Nonce() != v2.Nonce() || v1.Size() != v2.Size() ||
		!slices.Equal(v1.Signers(), v2.Signers()) || s1 != s2 || e1s != e2s {
		tb.Fatalf("%s: verified transactions differ:\n Verify: %+v\n Pool:   %+v", what, v1, v2)
	}
}

func sameBlockResult(tb testing.TB, what string, b1 *VerifiedBlock, e1 error, b2 *VerifiedBlock, e2 error) {
	tb.Helper()
	if (e1 == nil) != (e2 == nil) {
		tb.Fatalf("%s: VerifyBlock says %v, Pool says %v", what, e1, e2)
	}
	if e1 != nil {
		if e1.Error() != e2.Error() || koinos.CodeOf(e1) != koinos.CodeOf(e2) {
			tb.Fatalf("%s: errors differ:\n VerifyBlock: %v\n Pool:        %v", what, e1, e2)
		}
		return
	}
	if b1.Block != b2.Block || b1.VerifiedBlockHeader != b2.VerifiedBlockHeader || len(b1.Txs) != len(b2.Txs) {
		tb.Fatalf("%s: blocks differ", what)
	}
	for i := range b1.Txs {
		sameResult(tb, fmt.Sprintf("%s tx %d", what, i), b1.Txs[i], nil, b2.Txs[i], nil)
	}
}

var (
	secpN = func() *big.Int {
		n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
		return n
	}()
	edL = func() *big.Int {
		l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
		return l
	}()
)

// mutation is one way of damaging (or not) a valid transaction.
type mutation struct {
	name string
	fn   func(f *fixture, tx *protocol.Transaction)
}

func reid(tx *protocol.Transaction) { tx.Id = koinos.TransactionID(tx.Header).Multihash() }

// resign replaces the signatures with fresh ones by signers.
func resign(tx *protocol.Transaction, signers ...keys.Signer) {
	tx.Signatures = nil
	txbuilder.Sign(tx, signers...)
}

var mutations = []mutation{
	{"none", func(*fixture, *protocol.Transaction) {}},
	{"flip signature byte", func(f *fixture, tx *protocol.Transaction) { tx.Signatures[0][40] ^= 0x10 }},
	{"flip signature header byte", func(f *fixture, tx *protocol.Transaction) { tx.Signatures[0][0] ^= 1 }},
	{"truncate signature", func(f *fixture, tx *protocol.Transaction) { tx.Signatures[0] = tx.Signatures[0][:64] }},
	{"no signatures", func(f *fixture, tx *protocol.Transaction) { tx.Signatures = nil }},
	{"signed by someone else", func(f *fixture, tx *protocol.Transaction) { resign(tx, f.all[len(f.all)-1]) }},
	{"payer and a stranger", func(f *fixture, tx *protocol.Transaction) {
		tx.Signatures = append(tx.Signatures, f.all[len(f.all)-2].Sign(mustDigest(tx)))
	}},
	{"duplicate signature", func(f *fixture, tx *protocol.Transaction) {
		tx.Signatures = append(tx.Signatures, append([]byte(nil), tx.Signatures[0]...))
	}},
	{"stranger first, then a bad one", func(f *fixture, tx *protocol.Transaction) {
		bad := append([]byte(nil), tx.Signatures[0]...)
		bad[len(bad)-1] ^= 1
		tx.Signatures = [][]byte{f.all[len(f.all)-1].Sign(mustDigest(tx)), tx.Signatures[0], bad}
	}},
	{"too many signatures", func(f *fixture, tx *protocol.Transaction) {
		for len(tx.Signatures) <= f.lim.MaxSignatures {
			tx.Signatures = append(tx.Signatures, tx.Signatures[0])
		}
	}},
	{"wrong chain id", func(f *fixture, tx *protocol.Transaction) { tx.Header.ChainId = []byte("other"); reid(tx) }},
	{"zero rc limit", func(f *fixture, tx *protocol.Transaction) { tx.Header.RcLimit = 0; reid(tx) }},
	{"id mismatch", func(f *fixture, tx *protocol.Transaction) { tx.Header.RcLimit++ }},
	{"operation root mismatch", func(f *fixture, tx *protocol.Transaction) {
		tx.Operations = append(tx.Operations, tx.Operations[0])
	}},
	{"high-S or S+L twin", func(f *fixture, tx *protocol.Transaction) {
		s := tx.Signatures[0]
		if len(s) == keys.Secp256k1SigSize {
			hs := new(big.Int).Sub(secpN, new(big.Int).SetBytes(s[33:]))
			hs.FillBytes(s[33:])
			return
		}
		le := slices.Clone(s[65:])
		slices.Reverse(le)
		sl := new(big.Int).Add(new(big.Int).SetBytes(le), edL)
		sl.FillBytes(le)
		slices.Reverse(le)
		copy(s[65:], le)
	}},
	{"secp header byte 33", func(f *fixture, tx *protocol.Transaction) {
		if s := tx.Signatures[0]; len(s) == keys.Secp256k1SigSize {
			s[0] = 33
		}
	}},
	{"small-order Ed25519 key", func(f *fixture, tx *protocol.Transaction) {
		s := make([]byte, keys.Ed25519SigSize)
		s[0], s[1], s[33] = 0xED, 1, 1 // A = R = identity, S = 0
		tx.Signatures = append([][]byte{s}, tx.Signatures...)
	}},
}

func mustDigest(tx *protocol.Transaction) koinos.Digest {
	d, _ := koinos.ParseMultihash(tx.Id)
	return d
}

// corpus builds transactions of every kind: each signer paying, with and
// without a payee holding the nonce, with every mutation.
func (f *fixture) corpus(tb testing.TB) (txs []*protocol.Transaction, names []string) {
	tb.Helper()
	nonce := uint64(1)
	for i, payer := range f.all {
		payee := f.all[(i+1)%len(f.all)]
		for _, m := range mutations {
			for _, withPayee := range []bool{false, true} {
				var tx *protocol.Transaction
				if withPayee {
					signers := []keys.Signer{payer}
					if nonce%3 != 0 { // sometimes the payee does not sign
						signers = append(signers, payee)
					}
					tx = f.tx(tb, payer, payee, nonce, signers...)
				} else {
					tx = f.tx(tb, payer, nil, nonce)
				}
				nonce++
				m.fn(f, tx)
				txs = append(txs, tx)
				names = append(names, fmt.Sprintf("%s/%s/payee=%v", payer.Scheme(), m.name, withPayee))
			}
		}
	}
	return txs, names
}
