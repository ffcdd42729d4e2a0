package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// The suite, in miniature, on an in-process node: the batched runs and
// the two wallet-shaped ones, their ratios, checks, outputs and table.
func TestSuiteWithWalletRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs five loads")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := t.TempDir()
	r, err := RunSuite(ctx, SuiteOptions{
		Schemes: []keys.Scheme{keys.SchemeEd25519}, Txs: map[keys.Scheme]int{keys.SchemeEd25519: 800},
		Saturation: 5 * time.Second, Half: 300 * time.Millisecond, Concurrency: 4, Batch: 10, VerifyTime: 20 * time.Millisecond,
		Base: Options{Accounts: 300, BlockInterval: 100 * time.Millisecond, Poll: 5 * time.Millisecond,
			Node: NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()}},
		Out: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Schemes[0]
	if s.WalletTPS <= 0 || s.ManyTPS <= 0 || s.WalletRatio <= 0 || s.ManyRatio <= 0 || s.Errors != 0 {
		t.Fatalf("wallet-shaped runs: %+v", s)
	}
	names := map[string]bool{}
	for _, c := range s.Checks {
		names[c.Name] = true
	}
	if !names["one tx per request (32 conns) / batched"] || !names["256 connections / 32 connections"] {
		t.Fatalf("checks %+v", s.Checks)
	}
	for _, d := range []string{"ed25519-wallet", "ed25519-wallet-many"} {
		if _, err := os.Stat(filepath.Join(out, d)); err != nil {
			t.Fatalf("no outputs of %s: %v", d, err)
		}
	}
	var b bytes.Buffer
	r.Table(&b)
	if !strings.Contains(b.String(), "1/req ×256") || !strings.Contains(b.String(), "256 connections / 32 connections") {
		t.Fatalf("table:\n%s", b.String())
	}
}
