package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/internal/cmalloc"
	"github.com/emberchain/ember/internal/supervisor"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/node"
	"github.com/emberchain/ember/node/admin"
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/node/keyfile"
	"github.com/emberchain/ember/producer"
	"github.com/emberchain/ember/store"
)

// configFlags are the flags every command that reads the node
// configuration shares.
type configFlags struct {
	datadir *string
	file    *string
	set     setFlags
	rpcAddr *string
	level   *string
	format  *string
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	c := &configFlags{set: setFlags{}}
	c.datadir = fs.String("datadir", defaultDatadir(), "data directory (config.toml, genesis.json, keys/, data/)")
	c.file = fs.String("config", "", "configuration file (default DATADIR/config.toml)")
	fs.Var(c.set, "set", "set a configuration key: --set section.key=value (repeatable; see ember config keys)")
	c.rpcAddr = fs.String("rpc-addr", "", "JSON-RPC listen address (rpc.listen)")
	c.level = fs.String("log-level", "", "log level: debug, info, warn, error (log.level)")
	c.format = fs.String("log-format", "", "log format: text or json (log.format)")
	return c
}

func (c *configFlags) load() (config.Config, error) {
	set := setFlags{}
	for k, v := range c.set {
		set[k] = v
	}
	for key, v := range map[string]string{"rpc.listen": *c.rpcAddr, "log.level": *c.level, "log.format": *c.format} {
		if v != "" {
			set[key] = v
		}
	}
	file := *c.file
	optional := false
	if file == "" {
		file, optional = filepath.Join(*c.datadir, "config.toml"), true
	}
	return config.Load(config.Sources{File: file, FileOptional: optional, Env: os.Environ(), Set: set})
}

// nodeConfig loads the configuration and turns it into a node.Config,
// with a logger to stderr at the configured level.
func (c *configFlags) nodeConfig(stderr io.Writer) (config.Config, node.Config, *slog.Logger, *slog.LevelVar, error) {
	cfg, err := c.load()
	if err != nil {
		return cfg, node.Config{}, nil, nil, err
	}
	log, level := newLogger(cfg, stderr)
	nc, err := nodeConfig(*c.datadir, cfg, log)
	return cfg, nc, log, level, err
}

// under resolves p relative to dir unless it is absolute.
func under(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	_ = lv.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lv}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

func cmdNode(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("node", "node --datadir DIR [--rpc-addr HOST:PORT] [--set key=value ...]", stderr)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, nc, log, level, err := cf.nodeConfig(stderr)
	if err != nil {
		return err
	}
	logArenas(log)
	var metrics *admin.Metrics
	if cfg.Admin.Listen != "" {
		metrics = admin.NewMetrics()
		nc.Observer, nc.RPC.Observer, nc.GRPC.Observer = metrics, metrics, metrics
	}
	// systemd: READY=1 once serving, WATCHDOG=1 from the chain loop,
	// STOPPING=1 at shutdown. Without NOTIFY_SOCKET these do nothing.
	nc.Notify = func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Warn("sd_notify", "state", state, "err", err)
		}
	}
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		nc.WatchdogInterval = wd / 2
		log.Info("systemd watchdog enabled", "timeout", wd)
	}
	n, err := node.New(nc)
	if err != nil {
		return err
	}
	var extra []supervisor.Service
	if metrics != nil {
		a := admin.New(admin.Config{Listen: cfg.Admin.Listen, Pprof: cfg.Admin.Pprof, Level: level, Logger: log}, n, metrics)
		extra = append(extra, a.Service(log))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return n.Run(ctx, extra...)
}

// logArenas says what caps the C allocator's arenas, where Pebble keeps its
// cache and memtables (internal/cmalloc).
func logArenas(log *slog.Logger) {
	switch state, err := cmalloc.State(); {
	case err == nil:
		log.Info("C allocator", "arenas", state)
	case !errors.Is(err, errors.ErrUnsupported):
		log.Warn("C allocator: arenas not capped; RSS may climb as they fragment", "err", err)
	}
}

// nodeConfig turns the operator configuration into a node.Config: it reads
// the genesis file and the producer key.
func nodeConfig(datadir string, cfg config.Config, log *slog.Logger) (node.Config, error) {
	gpath := under(datadir, cfg.Node.Genesis)
	gb, err := os.ReadFile(gpath)
	if err != nil {
		return node.Config{}, fmt.Errorf("read genesis: %w (create a chain with: ember init --dev --datadir %s)", err, datadir)
	}
	g, err := genesis.Parse(gb)
	if err != nil {
		return node.Config{}, fmt.Errorf("%s: %w", gpath, err)
	}
	nc := node.Config{
		DataDir:   under(datadir, cfg.Node.Data),
		Genesis:   g,
		RPCListen: cfg.RPC.Listen,
		RPC:       rpcConfig(cfg),
		AMQP:      amqpConfig(cfg),
		Mempool: mempool.Config{
			MaxTransactions: cfg.Mempool.MaxTransactions, MaxBytes: cfg.Mempool.MaxBytes,
			MaxPerAccount: cfg.Mempool.MaxPerAccount, ExpiryMs: uint64(cfg.Mempool.Expiry.Milliseconds()),
		},
		Store: store.Options{
			CacheBytes:          cfg.Store.CacheBytes,
			DecodedTransactions: cfg.Store.DecodedTransactions,
			MaxReadTransactions: cfg.Store.MaxReadTransactions,
			NoTransactionIndex:  !cfg.Store.TransactionIndex,
			NoAccountHistory:    !cfg.Store.AccountHistory,
			MaxLogRecords:       cfg.Store.EventLogRecords,
			MinFreeBytes:        cfg.Store.MinFreeBytes,
		},
		Verify: sigverify.PoolConfig{
			Workers: cfg.Verify.Workers, QueueDepth: cfg.Verify.QueueDepth, MaxBatch: cfg.Verify.MaxBatch, CacheSize: cfg.Verify.CacheSize, GatherWindow: gatherWindow(cfg.Verify.GatherWindow),
		},
		CheckpointInterval: cfg.Chain.CheckpointInterval,
		MaxForkBlocks:      cfg.Chain.MaxForkBlocks,
		MaxReadCompute:     cfg.Chain.MaxReadCompute,
		MaxCachedAccounts:  cfg.Chain.AccountCache,
		Logger:             log,
	}
	nc.GRPCListen, nc.GRPC = cfg.GRPC.Listen, grpcConfig(cfg)
	if off := cfg.Node.ClockOffset; off != 0 {
		log.Warn("node.clock_offset is set: this node's clock is skewed on purpose (tests only)", "offset", off.String())
		nc.Now = func() time.Time { return time.Now().Add(off) }
	}
	if len(cfg.P2P.Listen) > 0 {
		id, err := p2p.LoadOrCreateIdentity(under(under(datadir, cfg.Node.Keys), cfg.P2P.Key))
		if err != nil {
			return node.Config{}, err
		}
		nc.P2P = &p2p.Config{
			Identity: id, Listen: cfg.P2P.Listen, Peers: cfg.P2P.Peers, Announce: cfg.P2P.Announce, QUIC: cfg.P2P.QUIC,
			MaxPeers: cfg.P2P.MaxPeers, BanDuration: cfg.P2P.BanDuration, MaxMessageSize: cfg.P2P.MaxMessageSize,
			SyncBatchBytes: cfg.P2P.SyncBatchBytes, SyncPeers: cfg.P2P.SyncPeers, ServeRequests: cfg.P2P.ServeRequests,
			Agent: "ember/" + version,
		}
	}
	if cfg.Producer.Enabled {
		kpath := under(under(datadir, cfg.Node.Keys), cfg.Producer.Key)
		k, err := keyfile.Read(kpath)
		if err != nil {
			return node.Config{}, fmt.Errorf("producer key: %w (set producer.enabled=false to run without producing)", err)
		}
		guard, err := producer.OpenFileGuard(under(nc.DataDir, cfg.Producer.Guard))
		if err != nil {
			return node.Config{}, err
		}
		nc.ProducerKey, nc.SignGuard = k, guard
		nc.TimeBudgetPercent = cfg.Producer.TimeBudgetPercent
	}
	return nc, nil
}

// gatherWindow maps verify.gather_window (0: never wait) to the pool's
// setting (0 there is the default, negative never).
func gatherWindow(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
