package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/node"
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/rpcgw"
)

// cmdRPCGateway runs a remote JSON-RPC gateway: the node's JSON-RPC, served
// by the same rpcgw.Server, forwarding every call over the bus (koinos.rpc)
// to whichever nodes consume the service queues. Run several for scale-out.
func cmdRPCGateway(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rpcgw", "rpcgw --backend amqp://user:pass@host:5672/ [--listen HOST:PORT] [--admin HOST:PORT] [--set rpc.key=value ...]", stderr)
	backend := fs.String("backend", "", "the broker the nodes serve on (amqp://user:password@host:5672/vhost); default amqp.url")
	listen := fs.String("listen", "", "JSON-RPC listen address (default rpc.listen, 127.0.0.1:8080)")
	file := fs.String("config", "", "configuration file; its [rpc], [log] and [amqp] url apply (default: none)")
	set := setFlags{}
	fs.Var(set, "set", "set a configuration key: --set rpc.workers=128 (repeatable; the [rpc] and [log] keys apply)")
	level := fs.String("log-level", "", "log level: debug, info, warn, error (log.level)")
	adminAddr := fs.String("admin", "", "serve /healthz (503 while no node serves chain) and /metrics on this address (default: off)")
	if err := parse(fs, args); err != nil {
		return err
	}
	for key, v := range map[string]string{"rpc.listen": *listen, "amqp.url": *backend, "log.level": *level} {
		if v != "" {
			set[key] = v
		}
	}
	cfg, err := config.Load(config.Sources{File: *file, Env: os.Environ(), Set: set})
	if err != nil {
		return err
	}
	if cfg.AMQP.URL == "" {
		fmt.Fprintln(stderr, "--backend (or amqp.url) is required")
		fs.Usage()
		return errUsage
	}
	if cfg.RPC.Listen == "" {
		return errors.New("--listen (rpc.listen) is empty: a gateway must listen")
	}
	log, _ := newLogger(cfg, stderr)
	c, err := amqp.NewClient(amqp.ClientConfig{
		URL: cfg.AMQP.URL, Services: node.Services(), Logger: log, Names: testBusNames(),
		ReconnectMin: cfg.AMQP.ReconnectMin, ReconnectMax: cfg.AMQP.ReconnectMax,
	})
	if err != nil {
		return err
	}
	rc := rpcConfig(cfg)
	rc.Services, rc.Logger = node.Services(), log
	srv, err := rpcgw.New(rc, c)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.RPC.Listen)
	if err != nil {
		return fmt.Errorf("listen for JSON-RPC on %s: %w", cfg.RPC.Listen, err)
	}
	var adm *http.Server
	if *adminAddr != "" {
		aln, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen for admin on %s: %w", *adminAddr, err)
		}
		adm = &http.Server{Handler: gatewayAdmin(srv, c, rc.Services), ReadHeaderTimeout: 5 * time.Second}
		go adm.Serve(aln)
		defer adm.Close()
		log.Info("rpcgw: admin listening", "addr", aln.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	bus, cancelBus := context.WithCancel(context.Background())
	defer cancelBus()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(bus) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("rpcgw: forwarding JSON-RPC over AMQP", "listen", ln.Addr().String(), "backend", redactURL(cfg.AMQP.URL))
	select {
	case err := <-served:
		return fmt.Errorf("JSON-RPC server: %w", err)
	case <-ctx.Done():
	}
	log.Info("rpcgw: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("rpcgw: shutdown", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, rpcgw.ErrServerClosed) {
		return err
	}
	// The calls have drained: only now leave the bus.
	cancelBus()
	return <-ran
}

// rpcConfig is the gateway configuration of [rpc], for the node and for
// remote gateways alike.
func rpcConfig(cfg config.Config) rpcgw.Config {
	return rpcgw.Config{
		Addr: cfg.RPC.Listen, Path: cfg.RPC.Path, RefusedMethods: cfg.RPC.RefusedMethods,
		MaxBodyBytes: cfg.RPC.MaxBodyBytes, MaxBatch: cfg.RPC.MaxBatch, MaxResponseBytes: cfg.RPC.MaxResponseBytes,
		Workers: cfg.RPC.Workers, QueueSize: cfg.RPC.QueueSize, QueueTimeout: cfg.RPC.QueueTimeout, BackendTimeout: cfg.RPC.BackendTimeout,
		ReadTimeout: cfg.RPC.ReadTimeout, WriteTimeout: cfg.RPC.WriteTimeout, IdleTimeout: cfg.RPC.IdleTimeout,
		MaxConns: cfg.RPC.MaxConns, MaxConnsPerIP: cfg.RPC.MaxConnsPerIP, CORSOrigins: cfg.RPC.CORSOrigins,
	}
}

// amqpConfig is the node's AMQP server configuration of [amqp]; nil when
// amqp.url is empty.
func amqpConfig(cfg config.Config) *node.AMQPConfig {
	if cfg.AMQP.URL == "" {
		return nil
	}
	ac := &node.AMQPConfig{ServerConfig: amqp.ServerConfig{
		URL: cfg.AMQP.URL, Consumers: cfg.AMQP.Consumers, Prefetch: cfg.AMQP.Prefetch, RefusedMethods: cfg.AMQP.RefusedMethods,
		ReconnectMin: cfg.AMQP.ReconnectMin, ReconnectMax: cfg.AMQP.ReconnectMax, Names: testBusNames(),
	}}
	if ac.RefusedMethods == nil {
		ac.RefusedMethods = []string{}
	}
	if len(cfg.AMQP.Services) > 0 {
		ac.ServiceNames = cfg.AMQP.Services
	}
	ac.PublishEvents, ac.ContractEvents, ac.MempoolEvents, ac.NoRPC = cfg.AMQP.Events, cfg.AMQP.ContractEvents, cfg.AMQP.MempoolEvents, !cfg.AMQP.RPC
	return ac
}

// testBusNames lets cmd/ember's tests, and only them (the test binary sets
// EMBER_TEST_MAIN=1), keep their queues apart from Koinos's names on a
// shared broker; everything else gets Koinos's names.
func testBusNames() amqp.Names {
	if os.Getenv("EMBER_TEST_MAIN") == "1" && os.Getenv("EMBER_TEST_AMQP_PREFIX") != "" {
		return amqp.TestNames(os.Getenv("EMBER_TEST_AMQP_PREFIX"))
	}
	return amqp.Names{}
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(invalid URL)"
}
