package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/emberchain/ember/store"
)

// cmdReindex rebuilds the transaction index and account history of a
// stopped node's store from its blocks.
func cmdReindex(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reindex", "reindex --datadir DIR (with the node stopped)", stderr)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	_, nc, log, _, err := cf.nodeConfig(stderr)
	if err != nil {
		return err
	}
	dir := filepath.Join(nc.DataDir, "store")
	o := nc.Store
	o.Logger = log
	st, err := store.Open(dir, o)
	if err != nil {
		return fmt.Errorf("%w (a running node holds the store: stop it first)", err)
	}
	start := time.Now()
	last := start
	err = st.Reindex(func(stage string, done, total uint64) {
		if now := time.Now(); now.Sub(last) >= 2*time.Second || done == total {
			last = now
			fmt.Fprintf(stdout, "%s: %d of %d blocks\n", stage, done, total)
		}
	})
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reindexed in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}
