//go:build unix

package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/emberchain/ember/internal/crashtest"
)

// The short crash test of make test: the node killed with SIGKILL under
// load four times, every invariant of internal/crashtest checked after
// each restart, then a replay from genesis. make crashtest runs the long
// version (ember crashtest).
func TestCrashConsistencyShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node five times")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sum, err := crashtest.Run(ctx, crashtest.Config{
		Binary: os.Args[0], Env: []string{"EMBER_TEST_MAIN=1"},
		Kills: 4, MinUp: 700 * time.Millisecond, MaxUp: 1500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if sum != nil {
		t.Log(sum.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if sum.Restarts != 4 || sum.GuardChecks != 4 || sum.StoreCopiesChecked != 4 || sum.TxsIrreversible == 0 || sum.HistoryEntries == 0 || sum.ReplayBlocks == 0 {
		t.Fatalf("the run checked too little: %+v", sum)
	}
}

// The harness reports a fault, not only passes: the sign guard file
// deleted while the node is down (an operator's mistake, or a guard that
// was never written) is reported as a sign-guard violation.
func TestCrashHarnessReportsAMissingSignGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node three times")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := crashtest.Run(ctx, crashtest.Config{
		Binary: os.Args[0], Env: []string{"EMBER_TEST_MAIN=1"},
		Kills: 1, MinUp: 700 * time.Millisecond, MaxUp: 700 * time.Millisecond,
		AfterKill: func(dataDir string, _ int) error { return os.Remove(filepath.Join(dataDir, "sign-guard")) },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if !errors.Is(err, crashtest.ErrViolations) || sum == nil || !slices.Contains(sum.ViolatedInvariants, crashtest.InvSignGuard) {
		t.Fatalf("want a sign-guard violation, got %v\n%v", err, sum)
	}
	if sum.Dir == "" {
		t.Fatal("a failed run must keep its work directory")
	}
	os.RemoveAll(sum.Dir)
}
