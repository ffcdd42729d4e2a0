package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `ember — a Koinos-compatible validator/producer node

Usage:
  ember init --dev --datadir DIR          create a dev chain (config, genesis, keys; --producers N for several)
  ember init --genesis FILE --datadir DIR join a chain (--peer MULTIADDR ..., --producer-key FILE)
  ember devnet --nodes N --datadir DIR    run a local network of N producer nodes until Ctrl-C
  ember node --datadir DIR [flags]        run a node
  ember reindex --datadir DIR             rebuild the transaction index and account history (node stopped)
  ember replay --datadir DIR              re-apply every stored block from genesis and check the state root (node stopped)
  ember rpcgw --backend AMQP_URL [--listen HOST:PORT] [--admin HOST:PORT]
                                          a remote JSON-RPC gateway forwarding over the Koinos bus
  ember keys new --out FILE [--scheme S]  create a key (secp256k1 for koilib wallets, or ed25519)
  ember keys show FILE                    print a key's address
  ember tx transfer --key FILE --to ADDR --amount N [--wait]
                                          sign and send a token transfer
  ember status [--rpc URL] [--json]       chain id, head, last irreversible block, token
  ember config dump|keys [--datadir DIR]  print the effective configuration, or every key
  ember crashtest [--kills N]             kill a node under load N times (SIGKILL) and check nothing is lost
  ember e2e --scenario FILE | --all DIR   perturb a 4-producer devnet (kill, pause, disconnect, partition) and judge it
  ember bench MODE [flags]                load-test a node: rpc, sweep, engine, verify, suite, init
  ember version

Run "ember COMMAND -h" for the flags of a command.
`

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command-line mistake: usage was already printed.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func([]string, io.Writer, io.Writer) error{
		"init":      cmdInit,
		"node":      cmdNode,
		"reindex":   cmdReindex,
		"replay":    cmdReplay,
		"rpcgw":     cmdRPCGateway,
		"devnet":    cmdDevnet,
		"keys":      cmdKeys,
		"tx":        cmdTx,
		"status":    cmdStatus,
		"config":    cmdConfig,
		"bench":     cmdBench,
		"crashtest": cmdCrashtest,
		"e2e":       cmdE2E,
		"version":   func([]string, io.Writer, io.Writer) error { fmt.Fprintln(stdout, "ember", version); return nil },
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "ember: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintf(stderr, "ember %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// newFlags returns a flag set that prints its usage to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ember %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and refuses stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// setFlags collects repeated --set key=value flags.
type setFlags map[string]string

func (s setFlags) String() string { return "" }

func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("expected key=value, got %q", v)
	}
	s[k] = val
	return nil
}

func defaultDatadir() string {
	if d := os.Getenv("EMBER_DATADIR"); d != "" {
		return d
	}
	return "./data/dev"
}
