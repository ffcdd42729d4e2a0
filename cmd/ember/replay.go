package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/emberchain/ember/node/replay"
	"github.com/emberchain/ember/store"
)

// replayReport is what ember replay --json prints; the crash harness reads
// it.
type replayReport struct {
	HeadHeight uint64  `json:"head_height"`
	HeadID     string  `json:"head_id"`    // 0x multihash
	StateRoot  string  `json:"state_root"` // 0x multihash
	LIBHeight  uint64  `json:"lib_height"`
	Blocks     int     `json:"blocks"`
	Txs        int     `json:"transactions"`
	Seconds    float64 `json:"seconds"`
}

// cmdReplay re-applies a stopped node's blocks from genesis in a fresh
// chain and checks it reaches the node's head and state root.
func cmdReplay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", "replay --datadir DIR [--json] (with the node stopped)", stderr)
	cf := addConfigFlags(fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, nc, log, _, err := cf.nodeConfig(stderr)
	if err != nil {
		return err
	}
	o := nc.Store
	o.Logger = log
	st, err := store.Open(filepath.Join(nc.DataDir, "store"), o)
	if err != nil {
		return fmt.Errorf("%w (a running node holds the store: stop it first)", err)
	}
	defer st.Close()
	res, err := replay.Run(st, nc.Genesis, replay.Options{Logger: log})
	if err != nil {
		return err
	}
	rep := replayReport{
		HeadHeight: res.Head.Height, HeadID: fmt.Sprintf("0x%x", res.Head.ID.Multihash()),
		StateRoot: fmt.Sprintf("0x%x", res.StateRoot.Multihash()), LIBHeight: res.LIB.Height,
		Blocks: res.Blocks, Txs: res.Txs, Seconds: res.Duration.Seconds(),
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "replayed %d blocks (%d transactions) from genesis in %.1fs: head %d %s, state root %s, as stored\n",
		rep.Blocks, rep.Txs, rep.Seconds, rep.HeadHeight, rep.HeadID, rep.StateRoot)
	return nil
}
