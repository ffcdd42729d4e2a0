package bench

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// TestRunInProcess loads an in-process node briefly, for both schemes and
// both load shapes, and checks that every transaction is found in a block
// and that every output is written. It asserts nothing about speed.
func TestRunInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range []struct {
		scheme  keys.Scheme
		spec    LoadSpec
		observe string
	}{
		{keys.SchemeEd25519, LoadSpec{Txs: 600, Concurrency: 3, Batch: 5}, ObserveLive},
		{keys.SchemeSecp256k1, LoadSpec{Rate: 2000, Duration: 250 * time.Millisecond, Concurrency: 2, Batch: 4}, ObserveLive},
		{keys.SchemeEd25519, LoadSpec{Rate: 3000, Duration: 200 * time.Millisecond, Concurrency: 3, Batch: 2}, ObserveDeferred},
	} {
		t.Run(c.scheme.String()+"/"+c.observe, func(t *testing.T) {
			s, err := NewSession(ctx, Options{
				Scheme: c.scheme, Accounts: 30, BlockInterval: 100 * time.Millisecond, Poll: 5 * time.Millisecond, Observe: c.observe,
				Node: NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()}, CeilingTime: 20 * time.Millisecond, MaxTxs: 1000, MaxBatch: 5,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			}()
			r, err := s.Run(ctx, c.spec, "test")
			if err != nil {
				t.Fatal(err)
			}
			want := c.spec.Txs
			if want == 0 {
				want = int(c.spec.Rate * c.spec.Duration.Seconds())
			}
			if r.Txs != want || r.Included != want || r.Errors != 0 || r.Acked != want {
				t.Fatalf("txs %d, included %d, admitted %d, errors %d (%v); want all %d in blocks", r.Txs, r.Included, r.Acked, r.Errors, r.ErrorTexts, want)
			}
			if r.Scheme != c.scheme.String() || r.BlockIntervalMs != 100 || r.SigCeilingTPS <= 0 || r.CommittedTPS <= 0 || r.Latency.Inclusion.N != want {
				t.Fatalf("report: %+v", r)
			}
			// One producer: every block of the run is irreversible at once.
			if ir := r.Irreversibility; r.Nodes != 1 || r.Propagation != nil || ir.Blocks == 0 || ir.Unseen != 0 {
				t.Fatalf("%d nodes, irreversibility %+v", r.Nodes, ir)
			}
			// A second run continues the accounts' nonces on the same node.
			r2, err := s.Run(ctx, LoadSpec{Txs: 90, Concurrency: 3, Batch: 3}, "again")
			if err != nil {
				t.Fatal(err)
			}
			if r2.Included != 90 {
				t.Fatalf("second run: %d of 90 included (%v)", r2.Included, r2.ErrorTexts)
			}

			dir := t.TempDir()
			if err := s.WriteOutputs(dir, r); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "report.json"))
			if err != nil {
				t.Fatal(err)
			}
			checkStableFields(t, b)
			f, err := os.Open(filepath.Join(dir, "samples.csv"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != want+1 {
				t.Fatalf("samples.csv has %d rows, want %d", len(rows), want+1)
			}
			for _, row := range rows[1:] {
				if row[3] != "included" {
					t.Fatalf("sample %v not included", row)
				}
			}
			for _, name := range []string{"blocks.csv", "chart.png", "summary.txt"} {
				if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

func TestVerifyMode(t *testing.T) {
	r, err := RunVerify(context.Background(), VerifyOptions{Duration: 20 * time.Millisecond, Signers: 4, Threads: []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Figures) != 2*3*2 {
		t.Fatalf("%d figures", len(r.Figures))
	}
	for _, f := range r.Figures {
		if f.Sigs <= 0 {
			t.Errorf("%+v verified nothing", f)
		}
	}
}

func TestEngineMode(t *testing.T) {
	if testing.Short() {
		t.Skip("opens stores")
	}
	r, err := RunEngine(context.Background(), EngineOptions{Scheme: keys.SchemeEd25519, Accounts: 10, Blocks: 3, BlockTxs: 40, NoSync: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Txs != 120 || r.Accept.TPS <= 0 || r.Produce.TPS <= 0 {
		t.Fatalf("%+v", r)
	}
}

func TestDeriveKeysDeterministic(t *testing.T) {
	a, err := DeriveKeys(keys.SchemeSecp256k1, "s", 3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DeriveKeys(keys.SchemeSecp256k1, "s", 3)
	c, _ := DeriveKeys(keys.SchemeSecp256k1, "t", 3)
	for i := range a {
		if a[i].Address() != b[i].Address() || a[i].Address() == c[i].Address() {
			t.Fatal("keys must depend on the seed and only on it")
		}
	}
	if _, err := DeriveKeys(keys.SchemeEd25519, "s", 0); err == nil {
		t.Fatal("zero accounts must be refused")
	}
}

func TestKeysDirRoundTrip(t *testing.T) {
	dir := t.TempDir()
	kd, err := InitDataDir(dir, keys.SchemeEd25519, 3, "x", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ks, scheme, err := ReadKeys(kd)
	if err != nil || scheme != keys.SchemeEd25519 || len(ks) != 3 {
		t.Fatalf("%v %v %d", err, scheme, len(ks))
	}
	want, _ := DeriveKeys(keys.SchemeEd25519, "x", 3)
	for i := range ks {
		if ks[i].Address() != want[i].Address() {
			t.Fatal("keys read back differ")
		}
	}
	if _, err := InitDataDir(dir, keys.SchemeEd25519, 3, "x", time.Second); err == nil {
		t.Fatal("an initialized directory must be refused")
	}
}
