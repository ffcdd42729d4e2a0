package proccpu

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		name, line string
		want       time.Duration
		err        string
	}{
		{"plain", "42 (beam.smp) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 1 0", 2800 * time.Millisecond, ""},
		{"spaces and parentheses in the name", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0", 70 * time.Millisecond, ""},
		{"no name", "7 a R 1 7 7 0 -1 0 0 0 0 0 3 4", 0, "no command name"},
		{"too short", "7 (x) R 1 2 3", 0, "fields after the command name"},
		{"not numbers", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u s 0 0", 0, "are not counts"},
		{"empty", "", 0, "no command name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStat([]byte(c.line))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("%v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestSelfAndOfAgree(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { // use some CPU, so both are above zero
	}
	self := Self()
	proc, err := Of("self")
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in 10 ms ticks and is read after getrusage.
	if self <= 0 || proc < self-20*time.Millisecond || proc > self+time.Second {
		t.Fatalf("getrusage %v, /proc %v", self, proc)
	}
}
