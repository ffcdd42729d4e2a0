package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/emberchain/ember/internal/e2e"
)

// cmdE2E runs perturbed-network scenarios (internal/e2e) against this
// binary, one after another.
func cmdE2E(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "byzantine" {
		return cmdE2EByzantine(args[1:], stdout, stderr)
	}
	fs := newFlags("e2e", "e2e --scenario FILE | --all DIR [--seed N] [--dir DIR] [--json FILE]", stderr)
	scenario := fs.String("scenario", "", "a scenario file (TOML; internal/e2e/scenarios)")
	all := fs.String("all", "", "run every *.toml scenario of this directory, in name order")
	seed := fs.Uint64("seed", 0, "seed of the mixed scenarios' timelines (default: each file's seed)")
	dir := fs.String("dir", "", "work directory, kept; one subdirectory per scenario (default: temporary ones, kept only on failure)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	var scenarios []*e2e.Scenario
	switch {
	case (*scenario == "") == (*all == ""):
		fs.Usage()
		return fmt.Errorf("%w: give --scenario FILE or --all DIR", errUsage)
	case *scenario != "":
		s, err := e2e.LoadScenario(*scenario)
		if err != nil {
			return err
		}
		scenarios = []*e2e.Scenario{s}
	default:
		var err error
		if scenarios, err = e2e.LoadScenarios(*all); err != nil {
			return err
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var results []*e2e.Result
	failed := 0
	began := time.Now()
	for _, s := range scenarios {
		s.Reseed(*seed)
		cfg := e2e.Config{Binary: bin, Logger: log}
		if *dir != "" {
			cfg.Dir = filepath.Join(*dir, s.Name)
		}
		log.Info("e2e: scenario", "name", s.Name, "description", s.Description, "steps", len(s.Steps), "timeline", s.Length())
		res, err := e2e.Run(ctx, cfg, s)
		if res != nil {
			fmt.Fprint(stdout, res.String())
			results = append(results, res)
		}
		switch {
		case err == nil:
		case errors.Is(err, e2e.ErrViolations) && s.KnownFailure != "":
			log.Warn("e2e: a known failure failed as expected", "scenario", s.Name, "why", s.KnownFailure)
		default:
			failed++
			log.Error("e2e: scenario failed", "scenario", s.Name, "err", err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(stdout, "e2e: %d of %d scenarios passed in %s\n", len(scenarios)-failed, len(scenarios), time.Since(began).Round(time.Second))
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("e2e: %d scenarios failed", failed)
	}
	return ctx.Err()
}
