package main

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emberchain/ember/node/config"
)

// The optional indexes of the configuration reach the store.
func TestNodeConfigIndexes(t *testing.T) {
	dir := t.TempDir()
	if err := cmdInit([]string{"--dev", "--datadir", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ txIndex, history bool }{{true, true}, {false, true}, {true, false}, {false, false}} {
		t.Run(fmt.Sprintf("tx=%v/history=%v", tc.txIndex, tc.history), func(t *testing.T) {
			cfg := config.Default()
			cfg.Store.TransactionIndex, cfg.Store.AccountHistory = tc.txIndex, tc.history
			nc, err := nodeConfig(dir, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if nc.Store.NoTransactionIndex == tc.txIndex || nc.Store.NoAccountHistory == tc.history {
				t.Fatalf("store options %+v from transaction_index=%v account_history=%v", nc.Store, tc.txIndex, tc.history)
			}
		})
	}
}

// verify.gather_window 0 means never wait; the pool's 0 means its default.
func TestGatherWindowConfig(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, -1},
		{200 * time.Microsecond, 200 * time.Microsecond},
		{time.Millisecond, time.Millisecond},
	} {
		if got := gatherWindow(tc.in); got != tc.want {
			t.Errorf("gatherWindow(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// node.clock_offset skews the node's clock; unset, the node keeps the
// system clock (node.Config.Now nil).
func TestNodeConfigClockOffset(t *testing.T) {
	dir := t.TempDir()
	if err := cmdInit([]string{"--dev", "--datadir", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	nc, err := nodeConfig(dir, cfg, slog.New(slog.DiscardHandler))
	if err != nil || nc.Now != nil {
		t.Fatalf("without an offset: Now set (%v)", err)
	}
	cfg.Node.ClockOffset = -7 * time.Second
	if nc, err = nodeConfig(dir, cfg, slog.New(slog.DiscardHandler)); err != nil || nc.Now == nil {
		t.Fatalf("with an offset: no clock (%v)", err)
	}
	if behind := time.Since(nc.Now()); behind < 7*time.Second || behind > 8*time.Second {
		t.Fatalf("the clock is %v behind, want 7 s", behind)
	}
}
