package sigverify

import (
	"testing"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
)

// BenchmarkPrecheck is the stateless part of verification, per transaction:
// size, addresses, nonce, operation merkle root, id, signature digest.
func BenchmarkPrecheck(b *testing.B) {
	k := keys.Ed25519FromSeed(make([]byte, 32))
	chainID := koinos.Sum256([]byte("c")).Multihash()
	tx, _ := txbuilder.Transfer(k, koinos.AddressFromKey([]byte("t")), koinos.AddressFromKey([]byte("to")), 5, txbuilder.Header{ChainID: chainID, Nonce: 1, RcLimit: 100})
	lim := &Limits{ChainID: chainID}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := precheck(tx, lim); err != nil {
			b.Fatal(err)
		}
	}
}
