package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestBenchSoakShort is make test's soak: `ember bench soak` for 20 s at a
// low rate (5% of its own closed-loop probe) against a child node, its
// memory sampled every second and judged by the soak's rule. A node that
// leaks fast enough to show in 20 s, one that falls behind that rate, or
// any error fails it. make soak runs the same for an hour.
func TestBenchSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s soak")
	}
	// The bench gives its node a clean environment (no EMBER_*), so the
	// test binary runs as the node through a script that sets it.
	dir := t.TempDir()
	node := filepath.Join(dir, "ember-node")
	script := "#!/bin/sh\nEMBER_TEST_MAIN=1 exec " + strconv.Quote(os.Args[0]) + ` "$@"` + "\n"
	if err := os.WriteFile(node, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "soak")
	cmd := exec.Command(os.Args[0], "bench", "soak", "--node-binary", node, "--scheme", "ed25519", "--duration", "20s",
		"--rate-fraction", "0.05", "--probe-txs", "3000", "--sample-every", "1s",
		"--accounts", "40", "--concurrency", "4", "--batch", "5", "--block-interval", "200ms",
		"--ceiling-time", "0", "--no-progress", "--node-dir", t.TempDir(), "--out", out)
	cmd.Env = append(os.Environ(), "EMBER_TEST_MAIN=1")
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench soak: %v\n%s", err, output)
	}
	b, err := os.ReadFile(filepath.Join(out, "soak.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Pass   bool
		KeptUp bool `json:"kept_up"`
		Errors int
		RSS    struct {
			Flat    bool
			Samples int
		}
		HeapInuse *struct{ Samples int } `json:"heap_inuse"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Pass || !r.KeptUp || r.Errors != 0 || !r.RSS.Flat || r.RSS.Samples < 4 || r.HeapInuse == nil {
		t.Fatalf("soak.json: %s\n%s", b, output)
	}
	f, err := os.Open(filepath.Join(out, "soak.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 20 {
		t.Fatalf("soak.csv: %d rows, %v", len(rows), err)
	}
	// The child node's memory is split into the Go runtime's and Pebble's.
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"heap_live_mb", "go_sys_mb", "pebble_mb"} {
		i, ok := col[name]
		if !ok {
			t.Fatalf("soak.csv has no %s column: %v", name, rows[0])
		}
		if v, err := strconv.ParseFloat(rows[len(rows)-1][i], 64); err != nil || v <= 0 {
			t.Errorf("soak.csv: last %s = %q, want a positive figure", name, rows[len(rows)-1][i])
		}
	}
	if st, err := os.Stat(filepath.Join(out, "soak.png")); err != nil || st.Size() == 0 {
		t.Fatalf("soak.png: %v", err)
	}
}
