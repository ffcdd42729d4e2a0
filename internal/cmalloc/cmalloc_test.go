package cmalloc

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// childEnv makes the test binary a child that prints how many arenas
// glibc has once eight threads allocate at the same moment.
const childEnv = "EMBER_CMALLOC_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "" {
		os.Exit(m.Run())
	}
	os.Stdout.WriteString(strconv.Itoa(arenasAfterThreads(8)))
	os.Exit(0)
}

// arenasInChild runs the probe in a fresh process, whose constructor sees
// the environment given.
func arenasInChild(t *testing.T, env ...string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %v: %v: %s", env, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("child %v printed %q", env, out)
	}
	return n
}

func TestArenaCap(t *testing.T) {
	if os.Getenv("MALLOC_ARENA_MAX") != "" {
		t.Skip("MALLOC_ARENA_MAX is set for this test run; the cap then is the operator's")
	}
	state, err := State()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no glibc arenas here (cgo off or not Linux): Pebble then allocates from the Go heap")
	}
	if err != nil || state != strconv.Itoa(Arenas)+" arenas" {
		t.Fatalf("State() = %q, %v; want the package's cap", state, err)
	}
	cases := []struct {
		name     string
		env      []string
		min, max int
	}{
		// The variable an operator sets wins, and shows the probe sees
		// arenas past the cap when there is no cap.
		{"operator's 8", []string{"MALLOC_ARENA_MAX=8"}, Arenas + 1, 8},
		{"operator's 1", []string{"MALLOC_ARENA_MAX=1"}, 1, 1},
		{"package cap", nil, 1, Arenas},
	}
	for _, c := range cases {
		if n := arenasInChild(t, c.env...); n < c.min || n > c.max {
			t.Errorf("%s: eight threads allocating made %d arenas, want %d..%d", c.name, n, c.min, c.max)
		}
	}
}

func TestStateNamesTheOperatorsSetting(t *testing.T) {
	if _, err := State(); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no glibc arenas here")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStateChild$", "-test.v")
	cmd.Env = append(os.Environ(), "MALLOC_ARENA_MAX=3", "EMBER_CMALLOC_STATE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "state: MALLOC_ARENA_MAX=3 (from the environment)") {
		t.Fatalf("child said %s", out)
	}
}

// TestStateChild runs in the child of TestStateNamesTheOperatorsSetting.
func TestStateChild(t *testing.T) {
	if os.Getenv("EMBER_CMALLOC_STATE") == "" {
		t.Skip("run by TestStateNamesTheOperatorsSetting")
	}
	s, err := State()
	if err != nil {
		t.Log("state: " + err.Error())
		return
	}
	t.Log("state: " + s)
}
