package e2e

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Every scenario shipped in scenarios/ parses and plays.
func TestShippedScenarios(t *testing.T) {
	all, err := LoadScenarios("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range all {
		names[s.Name] = true
		if s.Description == "" {
			t.Errorf("%s: no description", s.Name)
		}
	}
	for _, want := range []string{"kill", "pause", "disconnect", "partition", "skew", "byzantine", "mixed"} {
		if !names[want] {
			t.Errorf("no scenarios/%s.toml", want)
		}
	}
	mixed, err := LoadScenario(filepath.Join("scenarios", "mixed.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if mixed.Length() < 9*time.Minute || len(mixed.Steps) < 20 {
		t.Fatalf("the mixed scenario lasts %v with %d steps, want about 10 minutes of them", mixed.Length(), len(mixed.Steps))
	}
	kinds := map[string]bool{}
	for _, s := range mixed.Steps {
		kinds[s.Action] = true
	}
	for _, k := range []string{ActKill, ActRestart, ActPause, ActResume, ActDisconnect, ActReconnect, ActPartition, ActHeal, ActSkew, ActUnskew, ActByzantine, ActByzantineDone} {
		if !kinds[k] {
			t.Errorf("the mixed timeline (seed %d) has no %s", mixed.Seed, k)
		}
	}
}

// A mixed timeline is the same for the same seed, another for another,
// and always playable: one perturbation at a time, each undone.
func TestMixedTimelineIsSeeded(t *testing.T) {
	const text = `
description = "x"
[mixed]
duration = "3m"
perturbations = ["kill", "pause", "disconnect", "partition", "skew", "byzantine"]
min_hold = "1s"
max_hold = "5s"
min_gap = "1s"
max_gap = "3s"
`
	if _, err := ParseScenario("m", text+"seed = 7\n"); err == nil {
		t.Fatal("a key after [mixed] belongs to it: want unknown key seed in mixed")
	}
	a, err := ParseScenario("m", "seed = 7\n"+text)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ParseScenario("m", "seed = 7\n"+text)
	c, _ := ParseScenario("m", "seed = 8\n"+text)
	if !reflect.DeepEqual(a.Steps, b.Steps) {
		t.Fatal("one seed drew two timelines")
	}
	if reflect.DeepEqual(a.Steps, c.Steps) {
		t.Fatal("two seeds drew one timeline")
	}
	for seed := uint64(1); seed < 200; seed++ {
		a.Reseed(seed)
		if err := CheckTimeline(a.Steps); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(a.Steps)%2 != 0 {
			t.Fatalf("seed %d: a perturbation without its undo", seed)
		}
	}
}

func TestScenarioErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{`description = "x"`, "either [[step]] tables or a [mixed] table"},
		{"bogus = 1\n[[step]]\naction = \"kill\"", "unknown keys"},
		{"[[step]]\naction = \"explode\"", `unknown action "explode"`},
		{"[[step]]\naction = \"kill\"\nnode = 4", "node 4: the network has nodes 0 to 3"},
		{"[[step]]\naction = \"restart\"\nnode = 1", "node1 was not killed"},
		{"[[step]]\naction = \"resume\"\nnode = 1", "node1 was not paused"},
		{"[[step]]\naction = \"reconnect\"\nnode = 1", "node1 was not disconnected"},
		{"[[step]]\naction = \"heal\"", "the network was not partitioned"},
		{"[[step]]\naction = \"skew\"\nnode = 1", "skew needs an offset"},
		{"[[step]]\naction = \"unskew\"\nnode = 1", "node1 was not skewed"},
		{"[[step]]\naction = \"kill\"\nnode = 1\n[[step]]\naction = \"pause\"\nnode = 1", "node1 is already killed, paused or skewed"},
		{"[[step]]\naction = \"byzantine-done\"", "the byzantine peer was not started"},
		{"[[step]]\naction = \"byzantine\"\n[[step]]\naction = \"byzantine\"", "the byzantine peer is already running"},
		{"[[step]]\naction = \"byzantine\"\nacts = [\"be-rude\"]", `unknown byzantine act "be-rude"`},
		{"[[step]]\nat = \"5s\"\naction = \"kill\"\n[[step]]\nat = \"1s\"\naction = \"restart\"", "time order"},
		{"[[step]]\naction = \"partition\"\ngroups = [[0, 1], [1, 2]]", "node 1 is in two groups"},
		{"[[step]]\naction = \"partition\"\ngroups = [[0, 1]]", "two or more"},
		{"block_interval = \"1ms\"\n[[step]]\naction = \"kill\"", "block_interval 1ms"},
		{"[mixed]\nduration = \"1m\"\nperturbations = [\"melt\"]\nmin_hold = \"1s\"\nmax_hold = \"1s\"\nmin_gap = \"1s\"\nmax_gap = \"1s\"", `"melt" is not one of`},
		{"[mixed]\nduration = \"1m\"\nperturbations = [\"kill\"]\nmin_hold = \"2s\"\nmax_hold = \"1s\"\nmin_gap = \"1s\"\nmax_gap = \"1s\"", "min_hold <= max_hold"},
	} {
		_, err := ParseScenario("t", c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.text, err, c.want)
		}
	}
}
