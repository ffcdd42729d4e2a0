package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emberchain/ember/node/config"
)

// TestSystemdUnit checks systemd/ember.service with systemd's own tools:
// `systemd-analyze verify` must pass and `systemd-analyze security` must
// rate its exposure 2.0 or better. In CI a missing systemd-analyze fails.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is required in CI (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "systemd", "ember.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's binary exists: point it at this test
	// binary, as make install points it at $(PREFIX)/bin/ember.
	body := strings.ReplaceAll(string(unit), "/usr/local/bin/ember", os.Args[0])
	path := filepath.Join(t.TempDir(), "ember.service")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (%v)\n%s", err, out)
	}
	if !strings.Contains(string(out), "Overall exposure level") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "LimitNOFILE=", "User=ember", "StateDirectory=ember", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// TestInstalledConfigLoads checks the default /etc/ember/ember.toml.
func TestInstalledConfigLoads(t *testing.T) {
	c, err := config.Load(config.Sources{File: filepath.Join("..", "..", "systemd", "ember.toml")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Format != "json" || c.RPC.Listen != "127.0.0.1:8080" || c.Admin.Listen != "127.0.0.1:9090" {
		t.Fatalf("%+v", c)
	}
}
