package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is every key of the node's configuration. Each field carries its
// TOML name, its documentation, and for some a check ("listen", "level",
// "format", "positive", "not-negative").
type Config struct {
	Node     Node     `toml:"node"`
	Log      Log      `toml:"log"`
	Producer Producer `toml:"producer"`
	RPC      RPC      `toml:"rpc"`
	Admin    Admin    `toml:"admin"`
	Mempool  Mempool  `toml:"mempool"`
	Verify   Verify   `toml:"verify"`
	Chain    Chain    `toml:"chain"`
	Store    Store    `toml:"store"`
	P2P      P2P      `toml:"p2p"`
	AMQP     AMQP     `toml:"amqp"`
	GRPC     GRPC     `toml:"grpc"`
}

// Node locates the node's files.
type Node struct {
	Genesis string `toml:"genesis" doc:"Genesis file. Relative paths are relative to the data directory (--datadir)."`
	Data    string `toml:"data" doc:"Directory of the Pebble store (blocks, indexes, state). Relative to the data directory."`
	Keys    string `toml:"keys" doc:"Directory holding private keys (mode 0700, files 0600), kept apart from the store. Relative to the data directory."`
	// ClockOffset skews the node's clock, for the perturbed-network tests
	// (internal/e2e): a real skewed machine cannot be made on one host.
	ClockOffset time.Duration `toml:"clock_offset" doc:"For tests only: added to the system clock for everything this node times (its slots, its blocks' timestamps, the check that a peer's block is not from the future), to play a machine whose clock is wrong. 0 in production; the node warns at start when it is set."`
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level" check:"level" doc:"Log level: debug, info, warn or error. Changeable at runtime on the admin listener."`
	Format string `toml:"format" check:"format" doc:"Log format: text or json."`
}

// Producer configures block production.
type Producer struct {
	Enabled bool   `toml:"enabled" doc:"Produce blocks in this node's slots when its key is a genesis producer."`
	Key     string `toml:"key" doc:"Producer key file (WIF or ed25519:), relative to node.keys. The node refuses to start if it is group- or world-readable."`
	// TimeBudgetPercent bounds block production inside the slot.
	TimeBudgetPercent int    `toml:"time_budget_percent" doc:"Share of the block interval, in percent, that building and storing a block may take: the producer stops packing when the time spent plus the measured store time of what it packed reaches it. 0: 40 with other producers (the block must reach them and be applied before the next slot), 50 alone. At most 95."`
	Guard             string `toml:"guard" doc:"File recording the last signed slot and height, written and synced before each block leaves the node, so no restart can sign twice for one slot. Relative to node.data."`
}

// RPC configures the public JSON-RPC gateway.
type RPC struct {
	Listen           string        `toml:"listen" check:"listen-or-empty" doc:"JSON-RPC listen address (host:port). Loopback by default; empty disables the gateway."`
	Path             string        `toml:"path" doc:"URL path served."`
	MaxBodyBytes     int           `toml:"max_body_bytes" check:"positive" doc:"Largest request body accepted, in bytes."`
	MaxBatch         int           `toml:"max_batch" check:"positive" doc:"Most calls in one JSON-RPC batch."`
	MaxResponseBytes int           `toml:"max_response_bytes" check:"positive" doc:"Largest response body, in bytes; a larger result is replaced by an error."`
	Workers          int           `toml:"workers" check:"positive" doc:"HTTP requests served at once."`
	QueueSize        int           `toml:"queue_size" doc:"Requests that may wait for a worker; beyond it they get HTTP 503. -1: none may wait."`
	QueueTimeout     time.Duration `toml:"queue_timeout" check:"positive" doc:"Longest wait for a worker before HTTP 504."`
	BackendTimeout   time.Duration `toml:"backend_timeout" check:"positive" doc:"Longest time one call may take inside the node."`
	ReadTimeout      time.Duration `toml:"read_timeout" check:"positive" doc:"Longest time to read a request."`
	WriteTimeout     time.Duration `toml:"write_timeout" check:"positive" doc:"Longest time to write a response."`
	IdleTimeout      time.Duration `toml:"idle_timeout" check:"positive" doc:"Idle keep-alive connections are closed after this."`
	MaxConns         int           `toml:"max_conns" check:"positive" doc:"Most open client connections."`
	MaxConnsPerIP    int           `toml:"max_conns_per_ip" doc:"Most open connections per client IP; 0: no limit."`
	CORSOrigins      []string      `toml:"cors_origins" doc:"Origins allowed to call from a browser (\"https://app.example\" or \"*\"). Empty: CORS off."`
	RefusedMethods   []string      `toml:"refused_methods" doc:"Method prefixes refused on this listener (koinos.rpc. is implied). Internal methods are refused by default."`
}

// Admin configures the operator listener: metrics, health, pprof.
type Admin struct {
	Listen string `toml:"listen" check:"listen-or-empty" doc:"Admin listen address for /metrics, /healthz and /debug; loopback by default; empty disables it."`
	Pprof  bool   `toml:"pprof" doc:"Serve Go's pprof profiles under /debug/pprof on the admin listener."`
}

// Mempool bounds the pending transaction pool.
type Mempool struct {
	MaxTransactions int           `toml:"max_transactions" check:"positive" doc:"Most pending transactions; when full, new ones are refused (nothing admitted is evicted)."`
	MaxBytes        int64         `toml:"max_bytes" check:"positive" doc:"Most bytes of pending transactions."`
	MaxPerAccount   int           `toml:"max_per_account" check:"positive" doc:"Most pending transactions per account (nonce account)."`
	Expiry          time.Duration `toml:"expiry" check:"positive" doc:"Pending transactions older than this are dropped."`
}

// Verify configures the signature verification stage.
type Verify struct {
	Workers    int `toml:"workers" doc:"Verification workers; 0: one per CPU core."`
	QueueDepth int `toml:"queue_depth" check:"positive" doc:"Requests each worker may queue; beyond it submissions are refused as overloaded."`
	MaxBatch   int `toml:"max_batch" check:"positive" doc:"Most signatures a worker verifies in one batch. Larger batches cost less per Ed25519 signature, but one invalid signature sends its whole batch to single checks (5–7 ms at 256); 128 halves that."`
	CacheSize  int `toml:"cache_size" check:"positive" doc:"Verified transactions remembered, so a transaction verified on submit is not verified again in a block."`
	// GatherWindow: sigverify.PoolConfig.GatherWindow (0 here: never).
	GatherWindow time.Duration `toml:"gather_window" check:"not-negative" doc:"Under load, how long a worker holding fewer than 16 signatures waits for more submissions before it verifies them: one-transaction requests (wallets) reach it one by one, and an Ed25519 batch of 8 or more costs about half as much per signature as one of 1 or 2. A worker seeing lone transactions never waits. 0: never wait."`
}

// Chain configures the engine.
type Chain struct {
	CheckpointInterval uint64 `toml:"checkpoint_interval" check:"positive" doc:"Irreversible blocks between state checkpoints. Larger: fewer writes, longer replay after a crash."`
	MaxForkBlocks      int    `toml:"max_fork_blocks" check:"positive" doc:"Most blocks held above the last irreversible one. A producer stops extending a branch it already signed once it is half this deep (less one block per producer) above the last irreversible block, until other producers' blocks move irreversibility: a partition then stops instead of growing branches the other side could not take back (docs/network.md, Consensus)."`
	AccountCache       int    `toml:"account_cache" check:"positive" doc:"Account records kept in memory."`
	MaxReadCompute     uint64 `toml:"max_read_compute" check:"positive" doc:"Most compute one chain.read_contract call of an uploaded contract may use (fuel: about one unit per WebAssembly instruction). Reads are not consensus: this bounds how long one read holds an RPC worker."`
}

// Store configures Pebble.
type Store struct {
	CacheBytes int64 `toml:"cache_bytes" check:"positive" doc:"Pebble block cache, in bytes."`
	// Bounds on decoded blocks in memory, in transactions.
	DecodedTransactions int `toml:"decoded_transactions" check:"positive" doc:"Transactions in the decoded blocks kept for reads (the newest block stays whatever its size)."`
	MaxReadTransactions int `toml:"max_read_transactions" check:"positive" doc:"Transactions one multi-block read may decode: block_store.get_blocks_by_height and account_history.get_account_history return fewer items past it, get_blocks_by_id fails; the first block is always read."`
	// Optional indexes, as Koinos's transaction_store and account_history
	// services are optional.
	TransactionIndex bool `toml:"transaction_index" doc:"Keep the transaction index (transaction_store.get_transactions_by_id; koilib's wait() needs it). Fixed when the data directory is created. Off, with account_history off, halves the store's cost per block, for validators that serve no wallets."`
	AccountHistory   bool `toml:"account_history" doc:"Keep account history (account_history.get_account_history). Fixed when the data directory is created."`
	// The durable event log (docs/bus.md).
	EventLogRecords int `toml:"event_log_records" check:"positive" doc:"Cap on the records the durable event log retains (a few per block, about 100 bytes each). Records every registered consumer (the indexer, the AMQP publisher) has confirmed are pruned; past the cap the oldest go even if a consumer has not confirmed them, and that consumer is told it must resync (ember_eventlog_dropped_total)."`
	// Disk faults (docs/reliability.md).
	MinFreeBytes int64 `toml:"min_free_bytes" check:"not-negative" doc:"Free space, in bytes, the node keeps on the store's disk: below it the node does not start, and stops producing (without writing anything) until space is back; /healthz says disk full, ember_disk_full is 1. It leaves room for a block's write-ahead-log record and Pebble's flushes, which cannot fail without stopping the node. 0 turns the check off."`
}

// P2P configures the peer-to-peer network (docs/network.md).
type P2P struct {
	Listen         []string      `toml:"listen" check:"multiaddrs" doc:"Multiaddrs to listen on for peers (/ip4/HOST/tcp/PORT; /ip4/HOST/udp/PORT/quic-v1 with p2p.quic). Loopback by default; empty disables the network (a single-node chain)."`
	Peers          []string      `toml:"peers" check:"multiaddrs" doc:"Static peers, /ip4/HOST/tcp/PORT/p2p/PEER-ID each: dialled at start and re-dialled while disconnected."`
	Announce       []string      `toml:"announce" check:"multiaddrs" doc:"Addresses to announce to peers instead of the listen addresses (behind NAT). Empty: the listen addresses."`
	Key            string        `toml:"key" doc:"Node identity key file (libp2p Ed25519), relative to node.keys; created with mode 0600 on first start. Its peer id is printed at start and by ember init."`
	MaxPeers       int           `toml:"max_peers" check:"positive" doc:"Most connected peers; the connection manager trims beyond it and the resource manager refuses connections past twice it."`
	QUIC           bool          `toml:"quic" doc:"Enable the QUIC transport besides TCP (listen on a /udp/PORT/quic-v1 address too)."`
	BanDuration    time.Duration `toml:"ban_duration" check:"positive" doc:"How long a peer stays banned (by peer id, and by IP when the address is public) once its error score passes the threshold, or at once when it is on another chain or protocol version."`
	MaxMessageSize int           `toml:"max_message_bytes" check:"positive" doc:"Largest gossip message; equal on every node. At least a full transaction batch (1 MiB) or a compact block of the genesis max_block_transactions (8 bytes each), whichever is larger, + 64 KiB: the node refuses to start with less."`
	SyncBatchBytes int           `toml:"sync_batch_bytes" check:"positive" doc:"Most bytes of blocks in one sync response, asked for and served, measured before compression (zstd on the wire); a response always carries its first block, however large. At most 256 MiB."`
	SyncPeers      int           `toml:"sync_peers" check:"positive" doc:"Peers block sync downloads from in parallel."`
	ServeRequests  int           `toml:"serve_requests" check:"positive" doc:"Sync and block-fetch requests served at once, over all peers; more wait briefly, then are refused."`
}

// AMQP configures the RPC bridge to the Koinos bus (docs/bus.md).
type AMQP struct {
	URL            string        `toml:"url" check:"amqp-url" doc:"RabbitMQ to join the Koinos bus on (amqp://user:password@host:5672/vhost): serve the queues koinos.rpc.<service> (amqp.rpc) and publish to koinos.event (amqp.events), as Koinos's microservices do. Empty: off."`
	Services       []string      `toml:"services" check:"amqp-services" doc:"Services served over AMQP, of chain, mempool, block_store, transaction_store, account_history, contract_meta_store, p2p, ember. Empty: all."`
	Consumers      int           `toml:"consumers" check:"positive" doc:"Consumers per service queue, each on its own channel serving one request at a time; several nodes on one broker compete for the same queues."`
	Prefetch       int           `toml:"prefetch" check:"positive" doc:"Unacknowledged requests each consumer may hold (basic.qos); requests are acknowledged after their reply is published. At most 65535."`
	RefusedMethods []string      `toml:"refused_methods" doc:"Method prefixes refused over AMQP (koinos.rpc. is implied), answered with an error. Internal methods are refused by default, as on the JSON-RPC listener."`
	ReconnectMin   time.Duration `toml:"reconnect_min" check:"positive" doc:"First wait before reconnecting to the broker; doubles (with jitter) up to amqp.reconnect_max."`
	ReconnectMax   time.Duration `toml:"reconnect_max" check:"positive" doc:"Longest wait between reconnection attempts."`
	Events         bool          `toml:"events" doc:"Publish the node's events to the koinos.event exchange with Koinos's routing keys (koinos.block.accept, koinos.block.irreversible, koinos.block.forks, ...; amqp.contract_events and amqp.mempool_events add those), from the durable event log with publisher confirms: none is lost across broker outages or restarts (docs/bus.md)."`
	ContractEvents bool          `toml:"contract_events" doc:"Also publish one koinos.event.<base58 contract>.<event name> message (event_parcel) per contract event (amqp.events on). Off by default: every event is already in its block's koinos.block.accept receipt, and one message per event (a transfer has one) costs the broker more than the node on a small machine (docs/bus.md)."`
	MempoolEvents  bool          `toml:"mempool_events" doc:"Also publish koinos.transaction.accept and koinos.mempool.accept for every transaction admitted to the mempool (amqp.events on). Off by default: Koinos's mempool and p2p services consume them, and Ember does their work itself; they add two messages per transaction and a copy of each on disk."`
	RPC            bool          `toml:"rpc" doc:"Serve the Koinos service queues (koinos.rpc.<service>). Off with amqp.events on: a node that only publishes."`
}

// GRPC configures the gRPC gateway (docs/api.md, gRPC). Its refused
// methods, message sizes, workers, queue, deadlines and connection bound are
// the rpc.* ones.
type GRPC struct {
	Listen               string        `toml:"listen" check:"listen-or-empty" doc:"gRPC listen address (host:port) for Koinos's koinos.services.koinos service and Ember's ember.services.mempool, with reflection and grpc.health.v1 (Koinos's gateway uses port 50051). Empty by default: off; use a loopback address unless clients elsewhere need it. It applies the rpc.* limits: refused_methods, max_body_bytes and max_response_bytes (per message), workers, queue_size, queue_timeout, backend_timeout, read_timeout (handshake), idle_timeout and max_conns."`
	MaxConcurrentStreams int           `toml:"max_concurrent_streams" check:"positive" doc:"Most calls in flight on one gRPC connection; more wait in the client."`
	KeepaliveMinTime     time.Duration `toml:"keepalive_min_time" check:"positive" doc:"Shortest interval between a client's keepalive pings; a client pinging more often, or with no call open, is sent GOAWAY (too_many_pings) and disconnected."`
	KeepaliveTime        time.Duration `toml:"keepalive_time" check:"positive" doc:"The server pings a connection idle for this long."`
	KeepaliveTimeout     time.Duration `toml:"keepalive_timeout" check:"positive" doc:"A connection whose answer to the server's ping takes longer than this is closed."`
}

// AMQPServices are the services the node can serve over AMQP.
var AMQPServices = []string{"chain", "mempool", "block_store", "transaction_store", "account_history", "contract_meta_store", "p2p", "ember"}

// Default returns the defaults.
func Default() Config {
	return Config{
		Node:     Node{Genesis: "genesis.json", Data: "data", Keys: "keys"},
		Log:      Log{Level: "info", Format: "text"},
		Producer: Producer{Enabled: true, Key: "producer.key", Guard: "sign-guard"},
		RPC: RPC{
			Listen: "127.0.0.1:8080", Path: "/", MaxBodyBytes: 4 << 20, MaxBatch: 100, MaxResponseBytes: 16 << 20,
			Workers: 64, QueueSize: 1024, QueueTimeout: 2 * time.Second, BackendTimeout: 10 * time.Second,
			ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxConns: 10000,
			RefusedMethods: []string{"chain.submit_block", "chain.propose_block", "chain.invoke_system_call", "block_store.add_block"},
		},
		Admin:   Admin{Listen: "127.0.0.1:9090"},
		Mempool: Mempool{MaxTransactions: 200_000, MaxBytes: 256 << 20, MaxPerAccount: 1024, Expiry: 120 * time.Second},
		Verify:  Verify{QueueDepth: 1024, MaxBatch: 256, CacheSize: 131072, GatherWindow: 200 * time.Microsecond}, // MaxBatch: keys.MaxEd25519Batch; GatherWindow: sigverify.DefaultGatherWindow
		Chain:   Chain{CheckpointInterval: 64, MaxForkBlocks: 4096, AccountCache: 4 << 20, MaxReadCompute: 100_000_000},
		Store:   Store{CacheBytes: 64 << 20, DecodedTransactions: 1 << 16, MaxReadTransactions: 1 << 16, TransactionIndex: true, AccountHistory: true, EventLogRecords: 1 << 20, MinFreeBytes: 64 << 20},
		P2P: P2P{
			Listen: []string{"/ip4/127.0.0.1/tcp/8888"}, Key: "p2p.key", MaxPeers: 32, BanDuration: 30 * time.Minute,
			MaxMessageSize: 4 << 20, SyncBatchBytes: 8 << 20, SyncPeers: 4, ServeRequests: 16,
		},
		AMQP: AMQP{
			Consumers: 2, Prefetch: 8, ReconnectMin: 250 * time.Millisecond, ReconnectMax: 30 * time.Second, Events: true, RPC: true,
			RefusedMethods: []string{"chain.submit_block", "chain.propose_block", "chain.invoke_system_call", "block_store.add_block"},
		},
		GRPC: GRPC{MaxConcurrentStreams: 128, KeepaliveMinTime: 10 * time.Second, KeepaliveTime: 60 * time.Second, KeepaliveTimeout: 20 * time.Second},
	}
}

// key is one configuration key: its dotted name and where it lives.
type key struct {
	name  string // section.key
	env   string // EMBER_SECTION_KEY
	doc   string
	check string
	path  []int // field index path into Config
	typ   reflect.Type
}

var keyList = func() []key {
	var out []key
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		sec := t.Field(i)
		sname := sec.Tag.Get("toml")
		for j := 0; j < sec.Type.NumField(); j++ {
			f := sec.Type.Field(j)
			name := sname + "." + f.Tag.Get("toml")
			out = append(out, key{
				name: name, env: "EMBER_" + strings.ToUpper(strings.ReplaceAll(name, ".", "_")),
				doc: f.Tag.Get("doc"), check: f.Tag.Get("check"), path: []int{i, j}, typ: f.Type,
			})
		}
	}
	return out
}()

func lookup(name string) (key, bool) {
	for _, k := range keyList {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

// Keys returns every key name, in declaration order.
func Keys() []string {
	out := make([]string, len(keyList))
	for i, k := range keyList {
		out[i] = k.name
	}
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// set parses s into the key's field of c.
func (k key) set(c *Config, s string) error {
	v := reflect.ValueOf(c).Elem().FieldByIndex(k.path)
	switch {
	case k.typ == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("config: %s: expected a duration such as 500ms, 10s or 2m, got %q", k.name, s)
		}
		v.SetInt(int64(d))
	case k.typ.Kind() == reflect.String:
		v.SetString(s)
	case k.typ.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("config: %s: expected true or false, got %q", k.name, s)
		}
		v.SetBool(b)
	case k.typ.Kind() == reflect.Int || k.typ.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("config: %s: expected an integer, got %q", k.name, s)
		}
		v.SetInt(n)
	case k.typ.Kind() == reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("config: %s: expected a non-negative integer, got %q", k.name, s)
		}
		v.SetUint(n)
	case k.typ.Kind() == reflect.Slice:
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("config: %s: unsupported type %v", k.name, k.typ)
	}
	return nil
}

// Sources are the inputs Load combines.
type Sources struct {
	File string            // TOML file; "" or missing with Optional: none
	Env  []string          // KEY=VALUE, normally os.Environ()
	Set  map[string]string // from flags, by key name
	// FileOptional lets File be absent.
	FileOptional bool
}

// Load builds the configuration from defaults, file, environment and flags,
// and validates it.
func Load(src Sources) (Config, error) {
	c := Default()
	if src.File != "" {
		b, err := os.ReadFile(src.File)
		switch {
		case err == nil:
			if err := decodeFile(&c, b); err != nil {
				return c, fmt.Errorf("%s: %w", src.File, err)
			}
		case errors.Is(err, os.ErrNotExist) && src.FileOptional:
		default:
			return c, fmt.Errorf("config: %w", err)
		}
	}
	for _, kv := range src.Env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "EMBER_") {
			continue
		}
		matched := false
		for _, k := range keyList {
			if k.env == name {
				if err := k.set(&c, val); err != nil {
					return c, fmt.Errorf("%w (from environment variable %s)", err, name)
				}
				matched = true
			}
		}
		if !matched && !nonConfigEnv[name] {
			return c, fmt.Errorf("config: environment variable %s names no configuration key (keys: ember config keys)", name)
		}
	}
	names := make([]string, 0, len(src.Set))
	for n := range src.Set {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k, ok := lookup(n)
		if !ok {
			return c, fmt.Errorf("config: unknown key %q (keys: ember config keys)", n)
		}
		if err := k.set(&c, src.Set[n]); err != nil {
			return c, err
		}
	}
	return c, c.Validate()
}

// nonConfigEnv are EMBER_ variables that are not keys: the CLI's defaults
// for --datadir and --rpc, the switch that makes the cmd/ember test binary
// act as ember, and that binary's bus name prefix (cmd/ember/rpcgwcmd.go).
var nonConfigEnv = map[string]bool{"EMBER_DATADIR": true, "EMBER_RPC": true, "EMBER_TEST_MAIN": true, "EMBER_TEST_AMQP_PREFIX": true}

// describeParseError is the TOML error with the offending line quoted, or
// without the quote where the toml package cannot make one: its
// ErrorWithPosition indexes out of range on some inputs (a file holding
// just `"\`, found by FuzzDecodeFile), and a bad file must get an error,
// not crash the node.
func describeParseError(pe toml.ParseError) (msg string) {
	defer func() {
		if recover() != nil {
			msg = pe.Error()
		}
	}()
	return pe.ErrorWithPosition()
}

func decodeFile(c *Config, b []byte) error {
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("config: %s", describeParseError(pe))
		}
		// Type errors name the key; add the form expected.
		return fmt.Errorf("config: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return fmt.Errorf("config: unknown key %q (keys: ember config keys)", und[0].String())
	}
	return nil
}

// Validate checks every value.
func (c *Config) Validate() error {
	for _, k := range keyList {
		v := reflect.ValueOf(c).Elem().FieldByIndex(k.path)
		switch k.check {
		case "positive":
			if (v.CanInt() && v.Int() <= 0) || (v.CanUint() && v.Uint() == 0) {
				return fmt.Errorf("config: %s must be above 0", k.name)
			}
		case "not-negative":
			if v.CanInt() && v.Int() < 0 {
				return fmt.Errorf("config: %s must be 0 or more", k.name)
			}
		case "level":
			if !oneOf(v.String(), "debug", "info", "warn", "error") {
				return fmt.Errorf("config: %s must be debug, info, warn or error, got %q", k.name, v.String())
			}
		case "format":
			if !oneOf(v.String(), "text", "json") {
				return fmt.Errorf("config: %s must be text or json, got %q", k.name, v.String())
			}
		case "multiaddrs":
			for i := 0; i < v.Len(); i++ {
				if a := v.Index(i).String(); !strings.HasPrefix(a, "/") {
					return fmt.Errorf("config: %s: %q is not a multiaddr (e.g. /ip4/127.0.0.1/tcp/8888)", k.name, a)
				}
			}
		case "amqp-url":
			if s := v.String(); s != "" {
				if u, err := url.Parse(s); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
					return fmt.Errorf("config: %s must be amqp://user:password@host:port/vhost (or amqps://), got %q", k.name, redactURL(s))
				}
			}
		case "amqp-services":
			for i := 0; i < v.Len(); i++ {
				if sv := v.Index(i).String(); !oneOf(sv, AMQPServices...) {
					return fmt.Errorf("config: %s: unknown service %q (services: %s)", k.name, sv, strings.Join(AMQPServices, ", "))
				}
			}
		case "listen-or-empty":
			if s := v.String(); s != "" {
				if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
					return fmt.Errorf("config: %s must be host:port (e.g. 127.0.0.1:8080), got %q", k.name, s)
				}
			}
		}
	}
	if c.RPC.QueueSize < -1 {
		return errors.New("config: rpc.queue_size must be -1 or more")
	}
	if c.Producer.TimeBudgetPercent < 0 || c.Producer.TimeBudgetPercent > 95 {
		return fmt.Errorf("config: producer.time_budget_percent must be 0 (automatic) to 95, got %d", c.Producer.TimeBudgetPercent)
	}
	if c.AMQP.Prefetch > 65535 {
		return fmt.Errorf("config: amqp.prefetch must be at most 65535, got %d", c.AMQP.Prefetch)
	}
	if c.AMQP.ReconnectMax < c.AMQP.ReconnectMin {
		return fmt.Errorf("config: amqp.reconnect_max (%v) must not be below amqp.reconnect_min (%v)", c.AMQP.ReconnectMax, c.AMQP.ReconnectMin)
	}
	return nil
}

// redactURL hides a URL's password in error messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparseable)"
}

func oneOf(s string, opts ...string) bool {
	for _, o := range opts {
		if s == o {
			return true
		}
	}
	return false
}

// Encode writes c as a TOML file, every key present.
func (c Config) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Ember node configuration. Every key: docs/config.md, or `ember config keys`.\n")
	b.WriteString("# Precedence: flags (--set key=value) > environment (EMBER_SECTION_KEY) > this file > defaults.\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Markdown documents every key, for docs/config.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Configuration\n\n")
	b.WriteString("Generated from `node/config` (`go test ./node/config -run TestDocs -update` rewrites it).\n\n")
	b.WriteString("Every key can be set in the TOML file (`<datadir>/config.toml`), as an environment variable,\n")
	b.WriteString("or on the command line with `--set section.key=value`. Precedence: flag > environment > file > default.\n")
	b.WriteString("Lists are comma-separated in the environment and on the command line. Durations use Go's form (`500ms`, `10s`, `2m`).\n")
	b.WriteString("Unknown keys and bad values stop the node at start with a message naming the key. `ember config dump` prints the effective configuration.\n\n")
	d := Default()
	sec := ""
	for _, k := range keyList {
		s, _, _ := strings.Cut(k.name, ".")
		if s != sec {
			sec = s
			fmt.Fprintf(&b, "## [%s]\n\n| key | environment | default | meaning |\n|---|---|---|---|\n", sec)
		}
		def := reflect.ValueOf(d).FieldByIndex(k.path)
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", k.name, k.env, formatValue(def), k.doc)
		if next := nextSection(k); next != sec {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func nextSection(k key) string {
	for i, o := range keyList {
		if o.name == k.name && i+1 < len(keyList) {
			s, _, _ := strings.Cut(keyList[i+1].name, ".")
			return s
		}
	}
	return ""
}

func formatValue(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// Describe returns "name (ENV): doc" lines, for `ember config keys`.
func Describe() string {
	var b strings.Builder
	for _, k := range keyList {
		fmt.Fprintf(&b, "%-28s %-36s %s\n", k.name, k.env, k.doc)
	}
	return b.String()
}
