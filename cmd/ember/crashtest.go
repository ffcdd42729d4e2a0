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

	"github.com/emberchain/ember/internal/crashtest"
)

// cmdCrashtest runs the crash-consistency harness (internal/crashtest)
// against this binary.
func cmdCrashtest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("crashtest", "crashtest [--kills N] [flags]", stderr)
	cfg := crashtest.Config{}
	fs.IntVar(&cfg.Kills, "kills", 50, "SIGKILLs to survive")
	fs.DurationVar(&cfg.MinUp, "min-up", 0, "shortest run before a kill, from the node's first answer (default 1s)")
	fs.DurationVar(&cfg.MaxUp, "max-up", 0, "longest run before a kill (default 4s)")
	fs.DurationVar(&cfg.BlockInterval, "block-interval", 0, "block interval of the test chain (default 250ms)")
	fs.IntVar(&cfg.Senders, "senders", 0, "accounts sending transfers (default 4)")
	fs.Float64Var(&cfg.TxRate, "rate", 0, "transfers per second, all senders together (default 60)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the kill moments (default: from the clock; printed)")
	fs.StringVar(&cfg.Dir, "dir", "", "work directory, kept (default: a temporary one, kept only on failure)")
	jsonOut := fs.String("json", "", "also write the summary as JSON to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Binary = bin
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, err := crashtest.Run(ctx, cfg)
	if sum != nil {
		fmt.Fprint(stdout, sum.String())
		if *jsonOut != "" {
			b, _ := json.MarshalIndent(sum, "", "  ")
			if werr := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}
