package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/atomicfile"
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/node/keyfile"
)

// devFunds is the dev account's balance: 100,000,000 tokens of 8 decimals.
const devFunds = 100_000_000 * 100_000_000

func cmdInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", "init --dev --datadir DIR [--block-interval D] [--force]", stderr)
	dev := fs.Bool("dev", false, "create a development chain: this node is the sole producer and a dev account is funded")
	datadir := fs.String("datadir", defaultDatadir(), "data directory to create")
	interval := fs.Duration("block-interval", time.Second, "block interval of the new chain")
	name := fs.String("chain-name", "ember-dev", "chain name (part of the chain id)")
	force := fs.Bool("force", false, "overwrite an existing config and genesis (keys are kept)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*dev {
		fmt.Fprintln(stderr, "only --dev chains can be created for now: pass --dev")
		fs.Usage()
		return errUsage
	}
	if *interval < 10*time.Millisecond || *interval%time.Millisecond != 0 {
		return errors.New("--block-interval must be a whole number of milliseconds, at least 10ms")
	}
	cfgPath := filepath.Join(*datadir, "config.toml")
	if keyfile.Exists(cfgPath) && !*force {
		return fmt.Errorf("%s already exists: the data directory is initialized (use --force to rewrite config and genesis)", cfgPath)
	}
	if err := os.MkdirAll(*datadir, 0o755); err != nil {
		return err
	}
	cfg := config.Default()
	keyDir := filepath.Join(*datadir, cfg.Node.Keys)
	producerKey, err := loadOrCreateKey(filepath.Join(keyDir, cfg.Producer.Key), keys.SchemeSecp256k1)
	if err != nil {
		return err
	}
	devPath := filepath.Join(keyDir, "dev.key")
	devKey, err := loadOrCreateKey(devPath, keys.SchemeSecp256k1)
	if err != nil {
		return err
	}
	g, err := genesis.Dev(genesis.DevOptions{
		ChainName:       *name,
		Producers:       []koinos.Address{producerKey.Address()},
		Balances:        map[koinos.Address]uint64{devKey.Address(): devFunds},
		TokenAuthority:  devKey.Address(),
		BlockIntervalMs: uint64(interval.Milliseconds()),
		Now:             time.Now(),
	})
	if err != nil {
		return err
	}
	gb, err := g.Encode()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(*datadir, cfg.Node.Genesis), gb, 0o644); err != nil {
		return err
	}
	cb, err := cfg.Encode()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(cfgPath, cb, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Initialized %s (chain %q, chain id %s)\n", *datadir, *name, encodeChainID(g))
	fmt.Fprintf(stdout, "  producer:        %s\n", producerKey.Address())
	fmt.Fprintf(stdout, "  dev account:     %s (100000000 EMB)\n", devKey.Address())
	fmt.Fprintf(stdout, "  dev key:         %s\n", devPath)
	fmt.Fprintf(stdout, "  token contract:  %s\n", g.TokenID())
	fmt.Fprintf(stdout, "Start it with: ember node --datadir %s\n", *datadir)
	return nil
}

func loadOrCreateKey(path string, s keys.Scheme) (keys.Signer, error) {
	if keyfile.Exists(path) {
		return keyfile.Read(path)
	}
	k, err := keys.Generate(s)
	if err != nil {
		return nil, err
	}
	return k, keyfile.Write(path, k, false)
}

func encodeChainID(g *genesis.Genesis) string {
	return b64url(g.ChainID().Multihash())
}
