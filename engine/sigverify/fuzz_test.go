package sigverify

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/emberchain/ember/proto/koinos/protocol"
)

var (
	fuzzOnce    sync.Once
	fuzzFixture *fixture
	fuzzPool    *Pool
)

// FuzzVerifyTx: any bytes that decode as a transaction verify through the
// Pool without panicking, with exactly Verify's result. The corpus starts
// from valid and damaged transactions of both schemes.
func FuzzVerifyTx(f *testing.F) {
	fuzzOnce.Do(func() {
		fuzzFixture = newFixture(f, 2)
		p, err := NewPool(PoolConfig{Workers: 2, MaxBatch: 8, CacheSize: 256, Limits: fuzzFixture.lim})
		if err != nil {
			f.Fatal(err)
		}
		fuzzPool = p
	})
	txs, _ := fuzzFixture.corpus(f)
	for i, tx := range txs {
		if i%3 == 0 {
			b, _ := tx.MarshalVT()
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tx := &protocol.Transaction{}
		if err := tx.UnmarshalVT(data); err != nil {
			return
		}
		v1, e1 := Verify(tx, fuzzFixture.lim)
		v2, e2 := fuzzPool.VerifyTx(context.Background(), tx, "fuzz")
		if errors.Is(e2, ErrSourceLimit) || errors.Is(e2, ErrOverloaded) {
			return
		}
		sameResult(t, "fuzz", v1, e1, v2, e2)
		b := fuzzFixture.block([]*protocol.Transaction{tx, tx}, nil)
		b1, e1 := VerifyBlock(b, fuzzFixture.lim, 0)
		b2, e2 := fuzzPool.VerifyBlock(context.Background(), b, 0)
		sameBlockResult(t, "fuzz block", b1, e1, b2, e2)
	})
}
