package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/config.md")

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "[rpc]\nlisten = \"127.0.0.1:1111\"\nworkers = 7\n[mempool]\nexpiry = \"30s\"\n")
	c, err := Load(Sources{
		File: file,
		Env:  []string{"EMBER_RPC_LISTEN=127.0.0.1:2222", "EMBER_LOG_LEVEL=debug", "PATH=/bin", "EMBER_DATADIR=/x"},
		Set:  map[string]string{"rpc.listen": "127.0.0.1:3333"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.RPC.Listen != "127.0.0.1:3333" {
		t.Errorf("flag must win: %s", c.RPC.Listen)
	}
	if c.Log.Level != "debug" {
		t.Errorf("env must beat the default: %s", c.Log.Level)
	}
	if c.RPC.Workers != 7 || c.Mempool.Expiry != 30*time.Second {
		t.Errorf("file must beat the default: %d %v", c.RPC.Workers, c.Mempool.Expiry)
	}
	if c.Chain.CheckpointInterval != Default().Chain.CheckpointInterval {
		t.Error("default lost")
	}
}

func TestRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		src  Sources
		want string
	}{
		{"unknown file key", Sources{File: writeFile(t, "[rpc]\nlisen = \"x\"\n")}, `unknown key "rpc.lisen"`},
		{"unknown section", Sources{File: writeFile(t, "[rcp]\nlisten = \"x\"\n")}, `unknown key "rcp`},
		{"bad toml", Sources{File: writeFile(t, "[rpc\n")}, "config:"},
		{"toml the parser cannot quote", Sources{File: writeFile(t, `"\`)}, "config:"}, // its ErrorWithPosition panicked
		{"wrong type in file", Sources{File: writeFile(t, "[rpc]\nworkers = \"many\"\n")}, "workers"},
		{"unknown env", Sources{Env: []string{"EMBER_RPC_LISEN=x"}}, "EMBER_RPC_LISEN names no configuration key"},
		{"bad env value", Sources{Env: []string{"EMBER_RPC_WORKERS=lots"}}, "rpc.workers: expected an integer"},
		{"unknown flag key", Sources{Set: map[string]string{"rpc.nope": "1"}}, `unknown key "rpc.nope"`},
		{"bad duration", Sources{Set: map[string]string{"mempool.expiry": "5"}}, "expected a duration"},
		{"zero workers", Sources{Set: map[string]string{"rpc.workers": "0"}}, "rpc.workers must be above 0"},
		{"bad level", Sources{Set: map[string]string{"log.level": "loud"}}, "log.level must be"},
		{"bad listen", Sources{Set: map[string]string{"rpc.listen": "8080"}}, "rpc.listen must be host:port"},
		{"bad grpc listen", Sources{Set: map[string]string{"grpc.listen": "50051"}}, "grpc.listen must be host:port"},
		{"zero grpc streams", Sources{Set: map[string]string{"grpc.max_concurrent_streams": "0"}}, "grpc.max_concurrent_streams must be above 0"},
		{"zero keepalive", Sources{Set: map[string]string{"grpc.keepalive_min_time": "0s"}}, "grpc.keepalive_min_time must be above 0"},
		{"missing file", Sources{File: "/nonexistent/config.toml"}, "no such file"},
		{"time budget over 95", Sources{Set: map[string]string{"producer.time_budget_percent": "96"}}, "producer.time_budget_percent must be 0 (automatic) to 95"},
		{"negative time budget", Sources{Set: map[string]string{"producer.time_budget_percent": "-1"}}, "producer.time_budget_percent"},
		{"negative gather window", Sources{Set: map[string]string{"verify.gather_window": "-1ms"}}, "verify.gather_window must be 0 or more"},
		{"negative free-space reserve", Sources{Set: map[string]string{"store.min_free_bytes": "-1"}}, "store.min_free_bytes must be 0 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Load(Sources{File: "/nonexistent/config.toml", FileOptional: true}); err != nil {
		t.Fatalf("optional missing file: %v", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	c := Default()
	c.RPC.CORSOrigins = []string{"https://a.example"}
	c.Mempool.Expiry = 90 * time.Second
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(Sources{File: writeFile(t, string(b))})
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if got.Mempool.Expiry != c.Mempool.Expiry || len(got.RPC.CORSOrigins) != 1 || got.RPC.Listen != c.RPC.Listen {
		t.Fatalf("round trip changed the config:\n%s", b)
	}
}

// TestDocs keeps docs/config.md equal to what the code declares.
func TestDocs(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "config.md")
	want := Markdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/config.md is out of date: go test ./node/config -run TestDocs -update")
	}
	for _, k := range Keys() {
		if !strings.Contains(want, "`"+k+"`") {
			t.Errorf("key %s undocumented", k)
		}
	}
}
