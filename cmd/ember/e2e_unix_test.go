//go:build unix

package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/internal/e2e"
)

// The short perturbed network of make test: three scenarios of
// internal/e2e, shortened, on a 4-producer devnet of processes under
// load, judged by every check. make e2e runs the full ones.
func TestPerturbedNetworkShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 4-node devnets")
	}
	for _, c := range []struct{ name, text string }{
		{"kill", `
description = "SIGKILL node2, restart it after 4 s"
warmup = "3s"
[[step]]
action = "kill"
node = 2
[[step]]
at = "4s"
action = "restart"
node = 2
`},
		{"partition", `
description = "partition {0,3} | {1,2} for 5 s, then heal"
warmup = "3s"
[[step]]
action = "partition"
groups = [[0, 3], [1, 2]]
[[step]]
at = "5s"
action = "heal"
`},
		{"byzantine", `
description = "the byzantine peer: an invalid block, a head it never serves, a transaction flood"
warmup = "3s"
[[step]]
action = "byzantine"
acts = ["block-bad-signature", "unserved-head", "tx-flood"]
[[step]]
at = "1s"
action = "byzantine-done"
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := runScenario(t, c.name, c.text, e2e.Config{
				Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			if res != nil {
				t.Log(res.String())
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Irreversible < 20 || res.Tx.AckedIncluded < 50 || len(res.Timeline) != 3 {
				t.Fatalf("the run checked too little: %+v", res)
			}
			if c.name == "byzantine" {
				if len(res.Byzantine) != 1 || len(res.Byzantine[0].Acts) != 3 {
					t.Fatalf("the byzantine peer's acts were not judged: %+v", res.Byzantine)
				}
				for _, a := range res.Byzantine[0].Acts {
					if a.Sent == 0 || a.Judged != e2e.Nodes || a.BannedBy != e2e.Nodes {
						t.Fatalf("act %s: %+v", a.Act, a)
					}
				}
			}
		})
	}
}

// The harness reports a fault, not only passes: node3 runs with
// producer.enabled=false, so the network finalizes with the three others
// but its producer never signs a block after the heal, which must be
// reported as a production-resumed violation naming it, keeping the work
// directory.
func TestPerturbedNetworkReportsASilentProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 4-node devnet")
	}
	res, err := runScenario(t, "silent", `
description = "pause node2 for 2 s; node3 never produces"
warmup = "2s"
producers_within = "4s"
[[step]]
action = "pause"
node = 2
[[step]]
at = "2s"
action = "resume"
node = 2
`, e2e.Config{NodeSets: map[int][]string{3: {"producer.enabled=false"}}})
	if !errors.Is(err, e2e.ErrViolations) || res == nil || !slices.Equal(res.ViolatedInvariants, []string{e2e.InvResumed}) {
		t.Fatalf("want only a %s violation, got %v\n%v", e2e.InvResumed, err, res)
	}
	if !strings.Contains(res.Violations[0], "from producers [") {
		t.Fatalf("the violation does not name the silent producer: %s", res.Violations[0])
	}
	if res.Dir == "" {
		t.Fatal("a failed run must keep its work directory")
	}
	os.RemoveAll(res.Dir)
}

// runScenario parses a scenario and runs it with this test binary as
// ember, within 150 s.
func runScenario(t *testing.T, name, text string, cfg e2e.Config) (*e2e.Result, error) {
	t.Helper()
	sc, err := e2e.ParseScenario(name, text)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cfg.Binary, cfg.Env = os.Args[0], []string{"EMBER_TEST_MAIN=1"}
	return e2e.Run(ctx, cfg, sc)
}
