// Package p2p is Ember's network: a go-libp2p host (TCP, Noise, Yamux;
// QUIC optional) that shakes hands with peers of the same chain, gossips
// transactions in batches and blocks as compact blocks over gossipsub, and
// syncs blocks by request and response. docs/network.md is the operator's
// and protocol implementer's account; this is the code's.
//
// # Pieces
//
//	service.go  the host: transports, resource manager (connection and
//	            stream caps), connection manager, gater; Start/Run under
//	            the node's supervisor; static peers re-dialled
//	status.go   /ember/status/1: the handshake (chain id, version, head,
//	            last irreversible block) and the head poll every 2 s
//	gossip.go   gossipsub topics /ember/<chain>/tx/1 and /block/1: the
//	            node's events in, batches and compact blocks out; the
//	            validators that decide relay
//	droptrace.go what gossipsub drops under load (full queues), counted
//	            by topic and reason
//	resend.go   local transactions gossiped again until a block has them
//	fetch.go    /ember/fetch/1: the transactions a compact block lacks, or
//	            the whole block
//	sync.go     /ember/sync/1: fork point and block batches; the syncer
//	syncbuffer.go how far fetching runs ahead of verification (the cap)
//	guard.go    decaying error scores, bans, the connection gater
//	txindex.go  recent transactions by short id, for compact blocks
//	wire.go     length-prefixed frames, zstd for large responses
//
// # Data flow
//
// Out: the service is a blocking subscriber of the node's event stream
// (events). Transactions admitted from the API go into a backlog that a
// loop publishes in batches (up to 1,024 transactions or 1 MiB, at most
// 20 ms after the first); blocks this node produced are announced as
// compact blocks (header, signature, 8-byte short ids). Every admitted
// transaction, whatever its origin, enters the short-id index.
//
// In: gossipsub hands each message to a validator before relaying it.
// A transaction batch goes through the node's verifier as one group (the
// verify-once cache means a transaction is never verified twice, even when
// it comes back inside a block) and into the mempool; a batch with an
// invalid transaction is rejected and costs its sender. A compact block is
// rebuilt from the index; the transactions it lacks are fetched from the
// peer that relayed it (which must hold the block: a node relays only what
// it accepted), or the whole block when most are missing. The rebuilt
// block is verified and applied before the validator accepts it, so only
// valid blocks travel. If a rebuilt block fails, it is fetched whole once
// before the sender is blamed: a short id may have matched the wrong
// transaction, which the header's merkle root catches.
//
// Sync: the syncer looks at the peers' heads (from the handshake and the
// polls) and, when one is higher, asks it for the fork point (a locator of
// this node's head chain at doubling steps down to its last irreversible
// block), then fetches the blocks above it in windows sized to a byte
// budget, from up to SyncPeers peers at once, each request with a deadline
// sized to its bytes, never further ahead of verification than the sync
// buffer's cap (syncbuffer.go). Batches are checked for form (heights, links),
// verified ahead (up to 8 blocks at once, each across the verifier's
// workers) and applied in groups, one store sync per group. A peer that
// times out, serves blocks that do not link or verify, or cannot serve the
// head it claimed is scored down and dropped from the round; the others go
// on. A target that gave nothing toward its claimed head is left out of
// sync, and of the "syncing" decision below, for a while that doubles with
// each such round, so a peer lying about its head cannot stop production.
//
// While a peer's head is more than syncLag blocks above this node's (two,
// or two seconds of blocks when that is more) the node is "syncing":
// transaction gossip is held back (and incoming batches are ignored),
// p2p.get_gossip_status reports false, and the producer skips its slots
// rather than build on a stale head.
//
// # Trust
//
// Every decoder is bounded before it allocates (frame limits per message;
// a response's decompressed bytes held to its limit as they decode). A peer's
// misbehaviour adds to a score that halves every 10 minutes; at 100,000
// the peer is disconnected and banned (guard.go lists the costs). A peer on
// another chain or protocol version is banned at the handshake. Gossipsub's
// own peer scoring runs too, with the application score folded in.
package p2p
