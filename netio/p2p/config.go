package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of Config; docs/network.md explains each limit.
const (
	DefaultMaxPeers       = 32
	DefaultBanDuration    = 30 * time.Minute
	DefaultMaxMessageSize = 4 << 20
	DefaultSyncBatchBytes = 8 << 20
	DefaultSyncPeers      = 4
	DefaultServeRequests  = 16

	// statusInterval is how often every peer is asked for its head.
	statusInterval = 2 * time.Second
	// redialInterval is how often disconnected static peers are dialled.
	redialInterval = 5 * time.Second
	// txBatchDelay, txBatchMax and txBatchBytes bound how long an admitted
	// transaction waits before it is gossiped, and a batch's size.
	txBatchDelay = 20 * time.Millisecond
	txBatchMax   = 1024
	txBatchBytes = 1 << 20
	// txIndexSize is how many recent transactions compact blocks are
	// rebuilt from: about 6 s of transactions at 40,000 tx/s, several
	// blocks' worth. The index keeps them alive (about 300 bytes each), so
	// it is not larger.
	txIndexSize = 1 << 18
	// conflictBackoff is how long sync leaves out a peer whose chain lacks
	// this node's last irreversible block.
	conflictBackoff = time.Minute
	// unservedBackoff is how long sync first leaves out a peer whose
	// claimed head could not be had (no fork point, no blocks): doubled
	// with each such round in a row, up to conflictBackoff.
	unservedBackoff = 5 * time.Second
	// maxBacklog is how many locally submitted transactions wait for gossip
	// while the node syncs; older ones are dropped (they stay in the
	// mempool) and counted.
	maxBacklog = 1 << 16
)

// Config configures the network service.
type Config struct {
	// Identity is the node's key (LoadOrCreateIdentity).
	Identity crypto.PrivKey
	// Listen are the multiaddrs to listen on; at least one.
	Listen []string
	// Peers are static peers (with /p2p/<id>), dialled at start and
	// re-dialled while disconnected.
	Peers []string
	// Announce, when set, replaces the listen addresses in what peers learn.
	Announce []string
	// QUIC enables the QUIC transport besides TCP.
	QUIC bool
	// MaxPeers bounds connected peers (default 32).
	MaxPeers int
	// BanDuration is how long a ban lasts (default 30 min).
	BanDuration time.Duration
	// MaxMessageSize bounds a gossip message (default 4 MiB).
	MaxMessageSize int
	// SyncBatchBytes bounds the blocks of one sync response (default 8 MiB).
	SyncBatchBytes int
	// SyncPeers is how many peers sync downloads from at once (default 4).
	SyncPeers int
	// ServeRequests bounds the sync and fetch requests served at once
	// (default 16).
	ServeRequests int
	// MaxBlockBytes is the largest block the chain allows (genesis: its
	// network bandwidth limit, plus each transaction's framing in the block
	// and the header): sync and fetch responses carrying one block may be
	// that large. 0: 64 MiB.
	MaxBlockBytes int
	// MaxBlockTransactions is the chain's limit on a block (genesis): a
	// compact block carries 8 bytes per transaction. 0: 100,000.
	MaxBlockTransactions int
	// BlockInterval is the chain's (genesis); it sizes how far behind a
	// peer the node may be before it counts as syncing. 0: two blocks.
	BlockInterval time.Duration
	// Agent names this software to peers ("ember/<version>").
	Agent  string
	Logger *slog.Logger
	// Now is the clock for scores, bans and rates; nil is time.Now.
	Now func() time.Time
}

// EnsureDefaults fills zero fields.
func (c *Config) EnsureDefaults() {
	if c.MaxPeers <= 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.BanDuration <= 0 {
		c.BanDuration = DefaultBanDuration
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.SyncBatchBytes <= 0 {
		c.SyncBatchBytes = DefaultSyncBatchBytes
	}
	if c.SyncPeers <= 0 {
		c.SyncPeers = DefaultSyncPeers
	}
	if c.ServeRequests <= 0 {
		c.ServeRequests = DefaultServeRequests
	}
	if c.MaxBlockBytes <= 0 {
		c.MaxBlockBytes = 64 << 20
	}
	if c.MaxBlockTransactions <= 0 {
		c.MaxBlockTransactions = 100_000
	}
	if c.Agent == "" {
		c.Agent = "ember"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration, naming the key at fault.
func (c *Config) Validate() error {
	if c.Identity == nil {
		return errors.New("p2p: no identity key")
	}
	if len(c.Listen) == 0 {
		return errors.New("p2p: p2p.listen is empty")
	}
	for key, addrs := range map[string][]string{"p2p.listen": c.Listen, "p2p.announce": c.Announce} {
		for _, a := range addrs {
			if _, err := ma.NewMultiaddr(a); err != nil {
				return fmt.Errorf("p2p: %s: %q is not a multiaddr (e.g. /ip4/127.0.0.1/tcp/8888): %w", key, a, err)
			}
		}
	}
	if _, err := staticPeers(c.Peers); err != nil {
		return err
	}
	if c.SyncBatchBytes > maxSyncBatchBytes {
		return fmt.Errorf("p2p: p2p.sync_batch_bytes must be at most %d", maxSyncBatchBytes)
	}
	if least := minMessageSize(c.MaxBlockTransactions); c.MaxMessageSize < least {
		return fmt.Errorf("p2p: p2p.max_message_bytes must be at least %d: a transaction batch is up to %d bytes and a compact block of this chain's largest block %d", least, txBatchBytes, shortIDLen*c.MaxBlockTransactions)
	}
	return nil
}

// maxSyncBatchBytes bounds p2p.sync_batch_bytes: a batch is decoded in
// memory at once, on both sides.
const maxSyncBatchBytes = 256 << 20

// minMessageSize is the smallest gossip message limit that passes a full
// transaction batch and a compact block of the largest block, with room
// for gossipsub's envelope (topic, author, signature).
func minMessageSize(maxBlockTxs int) int {
	return max(txBatchBytes, shortIDLen*maxBlockTxs) + 64<<10
}

// staticPeers parses p2p.peers.
func staticPeers(addrs []string) ([]peer.AddrInfo, error) {
	byID := map[peer.ID]int{}
	var out []peer.AddrInfo
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("p2p: p2p.peers: %q must be a multiaddr ending in /p2p/<peer id> (e.g. /ip4/10.0.0.2/tcp/8888/p2p/12D3Koo...): %w", a, err)
		}
		if i, ok := byID[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		byID[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}
