package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/emberchain/ember/internal/e2e/byzantine"
)

// cmdE2EByzantine is `ember e2e byzantine`, the perturbed-network
// harness's byzantine peer (internal/e2e/byzantine): a test tool, started
// by ember e2e against its own devnet, never a way to run a node. It is
// left out of ember's usage on purpose.
func cmdE2EByzantine(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("e2e byzantine", "e2e byzantine --devnet DIR [--acts A,B] [--report FILE]  (test only: a misbehaving peer for ember e2e)", stderr)
	devnet := fs.String("devnet", "", "the devnet directory (ember devnet --create-only) whose nodes it connects to")
	acts := fs.String("acts", "all", "comma-separated acts: "+fmt.Sprint(byzantine.Acts))
	report := fs.String("report", "", "write the report (JSON) to this file; default stdout")
	actTimeout := fs.Duration("act-timeout", 0, "how long an act misbehaves waiting for every node to drop it (default 30s)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *devnet == "" {
		fs.Usage()
		return fmt.Errorf("%w: --devnet is required", errUsage)
	}
	list, err := byzantine.ParseActs(*acts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, runErr := byzantine.Run(ctx, byzantine.Config{
		Devnet: *devnet, Acts: list, ActTimeout: *actTimeout,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if rep != nil {
		b, _ := json.MarshalIndent(rep, "", "  ")
		b = append(b, '\n')
		if *report != "" {
			if err := os.WriteFile(*report, b, 0o644); err != nil {
				return err
			}
		} else {
			stdout.Write(b)
		}
	}
	return runErr
}
