package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/atomicfile"
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/node/keyfile"
)

// devFunds is the dev account's balance: 100,000,000 tokens of 8 decimals.
const devFunds = 100_000_000 * 100_000_000

// maxDevProducers bounds --producers: genesis accepts 1,024 producers, and
// init writes a key file for each one it generates.
const maxDevProducers = 1024

const initSynopsis = `init --dev --datadir DIR [--producers N | --producer-keys FILE,FILE,...] [flags]
       ember init --genesis FILE --datadir DIR [--peer MULTIADDR ...] [--producer-key FILE] [flags]`

// initFlags are ember init's flags; flags that only one of the two modes
// takes are checked against the mode by checkMode.
type initFlags struct {
	dev          bool
	genesisFile  string
	datadir      string
	interval     time.Duration
	name         string
	force        bool
	producers    int
	producerKeys string
	producerKey  string
	peers        repeatedFlag
	listen       repeatedFlag
	rpcAddr      string
	adminAddr    string
	given        map[string]bool // flags present on the command line
}

func cmdInit(args []string, stdout, stderr io.Writer) error {
	var f initFlags
	fs := newFlags("init", initSynopsis, stderr)
	fs.BoolVar(&f.dev, "dev", false, "create a development chain: a dev account is funded and this node produces")
	fs.StringVar(&f.genesisFile, "genesis", "", "join an existing chain: its genesis file, checked and copied into the data directory")
	fs.StringVar(&f.datadir, "datadir", defaultDatadir(), "data directory to create")
	fs.DurationVar(&f.interval, "block-interval", time.Second, "with --dev: block interval of the new chain")
	fs.StringVar(&f.name, "chain-name", "ember-dev", "with --dev: chain name (part of the chain id)")
	fs.BoolVar(&f.force, "force", false, "overwrite an existing config and genesis (keys are kept)")
	fs.IntVar(&f.producers, "producers", 1, "with --dev: number of block producers; the keys of the others are written to keys/producer-2.key ... for their nodes")
	fs.StringVar(&f.producerKeys, "producer-keys", "", "with --dev: the producers' key files, comma-separated, in schedule order; the first is this node's (copied to keys/producer.key), the others give only their addresses")
	fs.StringVar(&f.producerKey, "producer-key", "", "with --genesis: this node's producer key file, copied to keys/producer.key; without it the node follows the chain and does not produce")
	fs.Var(&f.peers, "peer", "with --genesis: a node to dial, /ip4/HOST/tcp/PORT/p2p/PEER-ID (repeatable; p2p.peers)")
	fs.Var(&f.listen, "p2p-listen", "multiaddr to listen on for peers (repeatable; p2p.listen; default /ip4/127.0.0.1/tcp/8888)")
	fs.StringVar(&f.rpcAddr, "rpc-addr", "", "JSON-RPC listen address host:port (rpc.listen; default 127.0.0.1:8080; empty turns it off)")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "admin listen address host:port (admin.listen; default 127.0.0.1:9090; empty turns it off)")
	if err := parse(fs, args); err != nil {
		return err
	}
	f.given = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	if err := f.checkMode(); err != nil {
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return errUsage
	}
	cfg, peers, err := f.config()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(f.datadir, "config.toml")
	if keyfile.Exists(cfgPath) && !f.force {
		return fmt.Errorf("%s already exists: the data directory is initialized (use --force to rewrite config and genesis)", cfgPath)
	}
	keyDir := filepath.Join(f.datadir, cfg.Node.Keys)
	var chain *initChain
	if f.dev {
		chain, err = f.newChain(keyDir, cfg)
	} else {
		chain, err = f.joinChain(keyDir, &cfg, stderr)
	}
	if err != nil {
		return err
	}
	id, err := loadIdentity(filepath.Join(keyDir, cfg.P2P.Key))
	if err != nil {
		return err
	}
	for i, p := range peers {
		if p.ID == id {
			return fmt.Errorf("--peer %s is this node's own address (peer id %s, from %s)", f.peers[i], id, filepath.Join(keyDir, cfg.P2P.Key))
		}
	}
	if err := writeDataDir(f.datadir, cfg, chain.genesisFile); err != nil {
		return err
	}
	chain.print(stdout, f.datadir, cfg, id)
	return nil
}

// checkMode refuses a command line that mixes the two modes.
func (f *initFlags) checkMode() error {
	switch {
	case f.dev && f.genesisFile != "":
		return errors.New("--dev creates a chain and --genesis joins one: pass one of them")
	case !f.dev && f.genesisFile == "":
		return errors.New("pass --dev to create a development chain, or --genesis FILE to join an existing one")
	}
	devOnly := []string{"producers", "producer-keys", "block-interval", "chain-name"}
	joinOnly := []string{"producer-key", "peer"}
	mode, other, misplaced := "--dev", "--genesis", joinOnly
	if !f.dev {
		mode, other, misplaced = "--genesis", "--dev", devOnly
	}
	for _, name := range misplaced {
		if f.given[name] {
			return fmt.Errorf("--%s goes with %s, not %s", name, other, mode)
		}
	}
	return nil
}

// config is the default configuration with the flags' addresses and
// peers; it returns the peers parsed too.
func (f *initFlags) config() (config.Config, []*peer.AddrInfo, error) {
	cfg := config.Default()
	var err error
	if f.given["p2p-listen"] {
		cfg.P2P.Listen = make([]string, len(f.listen))
		for i, s := range f.listen {
			if cfg.P2P.Listen[i], err = parseListen("--p2p-listen", s); err != nil {
				return cfg, nil, err
			}
		}
	}
	peers := make([]*peer.AddrInfo, len(f.peers))
	cfg.P2P.Peers = make([]string, len(f.peers))
	for i, s := range f.peers {
		if peers[i], cfg.P2P.Peers[i], err = parsePeer("--peer", s); err != nil {
			return cfg, nil, err
		}
	}
	if f.given["rpc-addr"] {
		if err := checkHostPort("--rpc-addr", f.rpcAddr); err != nil {
			return cfg, nil, err
		}
		cfg.RPC.Listen = f.rpcAddr
	}
	if f.given["admin-addr"] {
		if err := checkHostPort("--admin-addr", f.adminAddr); err != nil {
			return cfg, nil, err
		}
		cfg.Admin.Listen = f.adminAddr
	}
	return cfg, peers, cfg.Validate()
}

// initChain is what init learned about the chain, for writing and printing.
type initChain struct {
	genesis     *genesis.Genesis
	genesisFile []byte
	joined      string      // the --genesis file, when joining
	producers   []keyOnDisk // new chain: every producer, this node's first
	producer    *keyOnDisk  // joining: this node's producer key, if any
	dev         *keyOnDisk  // new chain: the funded dev account
	isProducer  bool        // joining: the producer key is in the genesis
	peers       int         // joining: static peers configured
	otherKeys   []string    // new chain: generated keys for the other nodes
}

// keyOnDisk is a key's address and the file that holds it.
type keyOnDisk struct {
	address koinos.Address
	path    string
}

// newChain creates or reuses the keys of a new dev chain and builds its
// genesis.
func (f *initFlags) newChain(keyDir string, cfg config.Config) (*initChain, error) {
	if f.interval < 10*time.Millisecond || f.interval%time.Millisecond != 0 {
		return nil, errors.New("--block-interval must be a whole number of milliseconds, at least 10ms")
	}
	var files []string
	if f.producerKeys != "" {
		files = strings.Split(f.producerKeys, ",")
		if f.given["producers"] && f.producers != len(files) {
			return nil, fmt.Errorf("--producers %d but --producer-keys lists %d files: pass one or the other", f.producers, len(files))
		}
		f.producers = len(files)
	}
	if f.producers < 1 || f.producers > maxDevProducers {
		return nil, fmt.Errorf("--producers must be 1 to %d, got %d", maxDevProducers, f.producers)
	}
	var given []keys.Signer
	if files != nil {
		var err error
		if given, err = readProducerKeys(files); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(f.datadir, 0o755); err != nil {
		return nil, err
	}
	ownKey := filepath.Join(keyDir, cfg.Producer.Key)
	var producers []keyOnDisk
	var err error
	if files != nil {
		producers, err = installProducerKeys(ownKey, files, given)
	} else {
		producers, err = generatedProducerKeys(ownKey, f.producers)
	}
	if err != nil {
		return nil, err
	}
	devPath := filepath.Join(keyDir, "dev.key")
	devKey, err := loadOrCreateKey(devPath, keys.SchemeSecp256k1)
	if err != nil {
		return nil, err
	}
	addrs := make([]koinos.Address, len(producers))
	for i, p := range producers {
		addrs[i] = p.address
	}
	g, gb, err := devGenesis(f.name, addrs, devKey.Address(), f.interval)
	if err != nil {
		return nil, err
	}
	c := &initChain{genesis: g, genesisFile: gb, producers: producers, dev: &keyOnDisk{devKey.Address(), devPath}}
	if files == nil {
		for _, p := range producers[1:] {
			c.otherKeys = append(c.otherKeys, p.path)
		}
	}
	return c, nil
}

// generatedProducerKeys returns count producer keys: this node's at
// ownKey, the others beside it as producer-2.key ... producer-N.key. Keys
// already there are kept.
func generatedProducerKeys(ownKey string, count int) ([]keyOnDisk, error) {
	out := make([]keyOnDisk, count)
	for i := range out {
		path := ownKey
		if i > 0 {
			path = numberedKeyPath(ownKey, i+1)
		}
		k, err := loadOrCreateKey(path, keys.SchemeSecp256k1)
		if err != nil {
			return nil, err
		}
		out[i] = keyOnDisk{k.Address(), path}
	}
	for i := range out {
		for j := range i {
			if out[i].address == out[j].address {
				return nil, fmt.Errorf("%s and %s hold the same key: remove one so init generates a new one", out[j].path, out[i].path)
			}
		}
	}
	return out, nil
}

// numberedKeyPath turns keys/producer.key into keys/producer-N.key.
func numberedKeyPath(path string, n int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), n, ext)
}

// readProducerKeys reads the --producer-keys files and refuses a key
// listed twice.
func readProducerKeys(files []string) ([]keys.Signer, error) {
	out := make([]keys.Signer, len(files))
	for i, file := range files {
		if file == "" {
			return nil, fmt.Errorf("--producer-keys %q: an empty file name", strings.Join(files, ","))
		}
		k, err := keyfile.Read(file)
		if err != nil {
			return nil, fmt.Errorf("--producer-keys: %w", err)
		}
		for j := range i {
			if out[j].Address() == k.Address() {
				return nil, fmt.Errorf("--producer-keys: %s and %s hold the same key (address %s)", files[j], file, k.Address())
			}
		}
		out[i] = k
	}
	return out, nil
}

// installProducerKeys installs the first --producer-keys key as this
// node's, at ownKey; the others stay where they are.
func installProducerKeys(ownKey string, files []string, ks []keys.Signer) ([]keyOnDisk, error) {
	if err := installKey(ownKey, ks[0], "--producer-keys"); err != nil {
		return nil, err
	}
	out := make([]keyOnDisk, len(ks))
	for i, k := range ks {
		out[i] = keyOnDisk{k.Address(), files[i]}
	}
	out[0].path = ownKey
	return out, nil
}

// joinChain checks the --genesis file and installs the --producer-key; a
// node without one follows the chain.
func (f *initFlags) joinChain(keyDir string, cfg *config.Config, stderr io.Writer) (*initChain, error) {
	gb, err := os.ReadFile(f.genesisFile)
	if err != nil {
		return nil, fmt.Errorf("--genesis: %w", err)
	}
	g, err := genesis.Parse(gb)
	if err != nil {
		return nil, fmt.Errorf("--genesis %s: %w", f.genesisFile, err)
	}
	c := &initChain{genesis: g, genesisFile: gb, joined: f.genesisFile, peers: len(f.peers)}
	var k keys.Signer
	if f.producerKey != "" {
		if k, err = keyfile.Read(f.producerKey); err != nil {
			return nil, fmt.Errorf("--producer-key: %w", err)
		}
	}
	if err := os.MkdirAll(f.datadir, 0o755); err != nil {
		return nil, err
	}
	if k == nil {
		cfg.Producer.Enabled = false
		return c, nil
	}
	ownKey := filepath.Join(keyDir, cfg.Producer.Key)
	if err := installKey(ownKey, k, "--producer-key"); err != nil {
		return nil, err
	}
	c.producer = &keyOnDisk{k.Address(), ownKey}
	c.isProducer = slices.Contains(g.Producers(), k.Address())
	if !c.isProducer {
		fmt.Fprintf(stderr, "warning: --producer-key %s: address %s is not among the %d producers of chain %q; the node will follow the chain without producing\n",
			f.producerKey, k.Address(), len(g.Producers()), g.Params().ChainName)
	}
	return c, nil
}

// installKey copies k to path with mode 0600. A key already at path is
// kept, as init always keeps keys: it must be k.
func installKey(path string, k keys.Signer, flagName string) error {
	if !keyfile.Exists(path) {
		return keyfile.Write(path, k, false)
	}
	old, err := keyfile.Read(path)
	if err != nil {
		return err
	}
	if old.Address() != k.Address() {
		return fmt.Errorf("%s already holds another key (address %s, not %s); init never replaces a key: move it away to install the one given by %s", path, old.Address(), k.Address(), flagName)
	}
	return nil
}

// devGenesis builds a dev chain's genesis: the producers in schedule
// order, the dev account funded and allowed to mint.
func devGenesis(name string, producers []koinos.Address, dev koinos.Address, interval time.Duration) (*genesis.Genesis, []byte, error) {
	g, err := genesis.Dev(genesis.DevOptions{
		ChainName:       name,
		Producers:       producers,
		Balances:        map[koinos.Address]uint64{dev: devFunds},
		TokenAuthority:  dev,
		BlockIntervalMs: uint64(interval.Milliseconds()),
		Now:             time.Now(),
	})
	if err != nil {
		return nil, nil, err
	}
	gb, err := g.Encode()
	if err != nil {
		return nil, nil, err
	}
	return g, gb, nil
}

// writeDataDir writes a data directory's genesis and config.toml; the
// config last, since its presence marks the directory initialized.
func writeDataDir(dir string, cfg config.Config, genesisFile []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, cfg.Node.Genesis), genesisFile, 0o644); err != nil {
		return err
	}
	cb, err := cfg.Encode()
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "config.toml"), cb, 0o644)
}

func (c *initChain) print(w io.Writer, datadir string, cfg config.Config, id peer.ID) {
	g := c.genesis
	name := g.Params().ChainName
	if c.joined == "" {
		fmt.Fprintf(w, "Initialized %s (chain %q, chain id %s)\n", datadir, name, encodeChainID(g))
	} else {
		fmt.Fprintf(w, "Initialized %s to join chain %q (chain id %s, %d producers)\n", datadir, name, encodeChainID(g), len(g.Producers()))
		fmt.Fprintf(w, "  genesis:         %s (from %s)\n", filepath.Join(datadir, cfg.Node.Genesis), c.joined)
	}
	switch {
	case len(c.producers) == 1:
		fmt.Fprintf(w, "  producer:        %s\n", c.producers[0].address)
	case len(c.producers) > 1:
		fmt.Fprintf(w, "  producers:       %d, in schedule order:\n", len(c.producers))
		for i, p := range c.producers {
			note := ""
			if i == 0 {
				note = " (this node)"
			}
			fmt.Fprintf(w, "    %-3s %s  %s%s\n", fmt.Sprintf("%d.", i+1), p.address, p.path, note)
		}
	case c.producer != nil && c.isProducer:
		fmt.Fprintf(w, "  producer:        %s (%s)\n", c.producer.address, c.producer.path)
	case c.producer != nil:
		fmt.Fprintf(w, "  producer:        %s (%s), not a producer of this chain: following\n", c.producer.address, c.producer.path)
	default:
		fmt.Fprintf(w, "  producer:        none, following the chain (producer.enabled = false)\n")
	}
	if c.dev != nil {
		fmt.Fprintf(w, "  dev account:     %s (100000000 EMB)\n", c.dev.address)
		fmt.Fprintf(w, "  dev key:         %s\n", c.dev.path)
	}
	fmt.Fprintf(w, "  token contract:  %s\n", g.TokenID())
	if c.joined != "" {
		fmt.Fprintf(w, "  static peers:    %d\n", c.peers)
	}
	fmt.Fprintf(w, "  p2p peer id:     %s\n", id)
	if len(cfg.P2P.Listen) == 0 {
		fmt.Fprintf(w, "  peer address:    none (p2p.listen is empty)\n")
	}
	for _, l := range cfg.P2P.Listen {
		addr, hint := peerAddress(l, id)
		fmt.Fprintf(w, "  peer address:    %s\n", addr)
		if hint != "" {
			fmt.Fprintf(w, "                   (%s)\n", hint)
		}
	}
	if len(c.otherKeys) > 0 {
		fmt.Fprintf(w, "The other producers' nodes join with a copy of %s, their key and this node's peer address:\n", filepath.Join(datadir, cfg.Node.Genesis))
		fmt.Fprintf(w, "  ember init --genesis genesis.json --producer-key %s --peer PEER-ADDRESS --datadir DIR\n", filepath.Base(c.otherKeys[0]))
	}
	fmt.Fprintf(w, "Start it with: ember node --datadir %s\n", datadir)
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
