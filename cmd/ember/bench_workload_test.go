package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emberchain/ember/internal/sdkas"
)

// TestBenchWorkloadFlags: `ember bench rpc|engine --workload wasm-token`
// refuses bad flags with a reason, and the chain's own reason when the
// file is not a contract; with the SDK token it runs both modes (the rpc
// one on an in-process node) and the reports say which workload ran.
func TestBenchWorkloadFlags(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "token.txt")
	empty := filepath.Join(dir, "empty.wasm")
	if err := os.WriteFile(text, []byte("not a contract"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	engine := []string{"bench", "engine", "--scheme", "ed25519", "--accounts", "8", "--blocks", "2", "--block-txs", "20", "--nosync", "--no-progress", "--dir", dir}
	rpc := []string{"bench", "rpc", "--scheme", "ed25519", "--accounts", "20", "--txs", "150", "--concurrency", "2", "--batch", "5", "--block-interval", "100ms",
		"--poll", "5ms", "--ceiling-time", "0", "--node", "in-process", "--node-dir", dir, "--no-progress"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--workload", "wasm-token"}, "needs --contract FILE"},
		{[]string{"--workload", "wasm-token", "--contract", filepath.Join(dir, "missing.wasm")}, "--contract: open"},
		{[]string{"--workload", "wasm-token", "--contract", empty}, "is empty"},
		{[]string{"--contract", text}, "only for --workload wasm-token"},
		{[]string{"--workload", "evm"}, `unknown --workload "evm"`},
	} {
		for _, mode := range [][]string{engine, rpc} {
			args := append(append(append([]string(nil), mode...), c.args...), "--out", t.TempDir())
			err := cmdBench(args[1:], &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ember %s: %v, want %q", strings.Join(args, " "), err, c.want)
			}
		}
	}
	if testing.Short() {
		return
	}
	for _, mode := range [][]string{engine, rpc} {
		args := append(append([]string(nil), mode[1:]...), "--workload", "wasm-token", "--contract", text, "--out", t.TempDir())
		err := cmdBench(args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "upload_contract") || !strings.Contains(err.Error(), "not a WebAssembly module") {
			t.Errorf("%s with a text file as the contract: %v, want the chain's refusal", mode[1], err)
		}
	}
	token := filepath.Join(dir, "token.wasm")
	if err := os.WriteFile(token, sdkas.Contract(t, "token"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		report string
	}{{engine, "engine.json"}, {rpc, "report.json"}} {
		out := t.TempDir()
		var stdout bytes.Buffer
		args := append(append([]string(nil), c.args[1:]...), "--workload", "wasm-token", "--contract", token, "--out", out)
		if err := cmdBench(args, &stdout, &bytes.Buffer{}); err != nil {
			t.Fatalf("%s: %v", c.args[1], err)
		}
		b, err := os.ReadFile(filepath.Join(out, c.report))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Workload struct {
				Name    string `json:"name"`
				RCLimit uint64 `json:"rc_limit"`
			} `json:"workload"`
			Included int `json:"included"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Workload.Name != "wasm-token" || r.Workload.RCLimit == 0 || (c.report == "report.json" && r.Included != 150) || !strings.Contains(stdout.String(), "WASM KCS-1 token transfers") {
			t.Fatalf("%s: %s\n%s", c.args[1], b, stdout.String())
		}
	}
}
