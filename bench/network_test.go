package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
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

// TestNetMode runs the net mode briefly on in-process nodes: a single
// node, then three producers on loopback. It checks that every transaction
// of every run is in a block, that the network's figures were measured and
// that the outputs are written. It asserts nothing about speed.
func TestNetMode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := t.TempDir()
	r, err := RunNet(ctx, NetOptions{Scheme: keys.SchemeEd25519, Nodes: 3, Txs: 600, Saturation: 2 * time.Second, Half: 2 * time.Second, Concurrency: 3, Batch: 5,
		Base: Options{Accounts: 30, BlockInterval: 200 * time.Millisecond, Poll: 5 * time.Millisecond, Node: NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()}, CeilingTime: 20 * time.Millisecond},
		Out:  out})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.SingleCommittedTPS <= 0 || r.CommittedTPS <= 0 || r.HalfCommittedTPS <= 0 || r.Ratio <= 0 || r.YardstickTPS <= 0 {
		t.Fatalf("result: %+v", r)
	}
	if p := r.Propagation; p == nil || p.Blocks == 0 || p.Live+p.NotLive != p.Blocks || len(p.Handshakes) != 3 || len(p.MissedPerNode) != 3 {
		t.Fatalf("propagation: %+v", p)
	}
	if r.IrreversibleBlocks == 0 || r.IrreversibleBlocks < r.IrreversibleUnseen || len(r.PerNode) != 3 || len(r.Checks) == 0 ||
		len(r.HeadsAfterSaturation) != 3 || len(r.HeadsAfterHalf) != 3 {
		t.Fatalf("result: %+v", r)
	}
	for _, run := range []string{"single-saturation", "net-saturation", "net-half"} {
		b, err := os.ReadFile(filepath.Join(out, run, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		checkStableFields(t, b)
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		want := 1
		if run != "single-saturation" {
			want = 3
		}
		if rep.Txs == 0 || rep.Included != rep.Txs || rep.Errors != 0 || rep.Nodes != want {
			t.Fatalf("%s: %d nodes, %d txs, %d included, %d errors (%v)", run, rep.Nodes, rep.Txs, rep.Included, rep.Errors, rep.ErrorTexts)
		}
	}
	for _, name := range []string{"net.json", "summary.txt"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSyncMode runs the sync mode briefly on in-process nodes: a source
// chain of 60 blocks, synced by a fresh follower. It asserts nothing about
// speed.
func TestSyncMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a chain and starts three nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := t.TempDir()
	r, err := RunSync(ctx, SyncOptions{Scheme: keys.SchemeEd25519, Blocks: 60, BlockTxs: 50, Txs: 400, Saturation: 2 * time.Second, Concurrency: 2, Batch: 5,
		Base: Options{Accounts: 20, BlockInterval: 100 * time.Millisecond, Node: NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()}, CeilingTime: -1},
		Out:  out})
	if err != nil {
		t.Fatal(err)
	}
	if r.Txs != 3000 || r.Errors != 0 || r.Seconds <= 0 || r.TxPerSec <= 0 || r.BlocksPerSec <= 0 || r.BlockBytes <= 0 || r.SingleCommittedTPS <= 0 || r.Ratio <= 0 {
		t.Fatalf("result: %+v", r)
	}
	if runtime.GOOS == "linux" && (r.MachineBusy < 0 || r.MachineBusy > 1) {
		t.Fatalf("machine busy %v", r.MachineBusy)
	}
	for _, name := range []string{"sync.json", "summary.txt", "single-saturation/report.json"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}
