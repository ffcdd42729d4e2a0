package bench

import (
	"context"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// TestNetworkSession loads three in-process producers on loopback for a
// moment: every transaction reaches a block, and the network's figures
// (propagation, irreversibility) are measured. It asserts nothing about
// speed.
func TestNetworkSession(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := NewSession(ctx, Options{
		Scheme: keys.SchemeEd25519, Accounts: 30, BlockInterval: 200 * time.Millisecond, Poll: 5 * time.Millisecond, Nodes: 3,
		Node: NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()}, CeilingTime: -1, MaxTxs: 2000, MaxBatch: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	if len(s.URLs()) != 3 {
		t.Fatalf("urls %v", s.URLs())
	}
	r, err := s.Run(ctx, LoadSpec{Rate: 1500, Duration: time.Second, Concurrency: 3, Batch: 5}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if r.Nodes != 3 || r.Txs != 1500 || r.Included != r.Txs || r.Errors != 0 {
		t.Fatalf("%d nodes, %d txs, %d included, %d errors (%v)", r.Nodes, r.Txs, r.Included, r.Errors, r.ErrorTexts)
	}
	if p := r.Propagation; p == nil || p.Blocks == 0 || p.Live+p.NotLive != p.Blocks || len(p.Handshakes) != 3 || len(p.MissedPerNode) != 3 {
		t.Fatalf("propagation: %+v", p)
	}
	if ir := r.Irreversibility; ir.Blocks == 0 || ir.Unseen > ir.Blocks || r.Latency.Irreversible.N != ir.Blocks-ir.Unseen {
		t.Fatalf("irreversibility: %+v, %+v", ir, r.Latency.Irreversible)
	}
}
