package sigverify

import (
	"context"
	"fmt"
	"testing"

	"github.com/emberchain/ember/proto/koinos/protocol"
)

// VerifyTxs answers each transaction as VerifyTx and Verify do, and sends
// the signatures to the workers in large batches.
func TestVerifyTxsMatchesVerify(t *testing.T) {
	f := newFixture(t, 8)
	corpus, names := f.corpus(t)
	var txs []*protocol.Transaction
	var labels []string
	for i := 0; i < 64; i++ { // valid ones, both schemes
		signer := f.all[i%len(f.all)]
		txs = append(txs, f.tx(t, signer, nil, uint64(i+1), signer))
		labels = append(labels, fmt.Sprint("valid ", i))
	}
	txs = append(txs, corpus...)
	labels = append(labels, names...)
	txs = append(txs, txs[3]) // a duplicate inside the group
	labels = append(labels, "duplicate")
	// A cap high enough that the invalid ones (which make the source a suspect)
	// do not trip admission: that is tested elsewhere.
	p := newTestPool(t, PoolConfig{Workers: 2, MaxBatch: 128, MaxInFlightPerSource: 10000, Limits: f.lim})
	got, errs := p.VerifyTxs(context.Background(), txs, "client")
	if len(got) != len(txs) || len(errs) != len(txs) {
		t.Fatal("result lengths")
	}
	for i, tx := range txs {
		want, werr := Verify(tx, f.lim)
		sameResult(t, labels[i], got[i], errs[i], want, werr)
	}
	st := p.Stats()
	big := uint64(0)
	for b := 4; b < len(st.BatchSizes); b++ { // batches of 16 signatures or more
		big += st.BatchSizes[b]
	}
	if big == 0 {
		t.Fatalf("no batch of 16 or more signatures: %v", st.BatchSizes)
	}
	// Again: everything is answered from the cache now.
	before := p.Stats().CacheMisses
	_, errs = p.VerifyTxs(context.Background(), txs[:64], "client")
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	if p.Stats().CacheMisses != before {
		t.Fatal("verified twice")
	}
}
