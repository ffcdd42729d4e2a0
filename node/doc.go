// Package node assembles Ember: store, engine, verifier, mempool, producer,
// the network and the JSON-RPC gateway, run as one process. cmd/ember, the
// bench harness and the integration tests all start the same Node.
//
// This file declares the whole pipeline — every stage, who runs it, its
// queue and what happens when it is full — so the data path can be read in
// one place (DESIGN §3, §4).
//
//	stage              runs on                      queue / bound                    when full / overloaded
//	-----              -------                      -------------                    ----------------------
//	rpc gateway        fasthttp workers             RPC.Workers, RPC.QueueDepth      HTTP 503, or 504 after RPC.QueueTimeout
//	decode             gateway worker (caller)      RPC.MaxBodyBytes per request     JSON-RPC error -32602 / -32601
//	verify             sigverify pool (cores)       Verify.QueueDepth per worker     error "verifier overloaded" to the caller
//	admission check    caller goroutine             none (reads an immutable View)   -
//	mempool            caller goroutine, sharded    Mempool.Max* caps                JSON-RPC error, code -206 / -201 / 104
//	chain loop         one goroutine                blockQueue (BlockQueueDepth)     submit_block waits for its context
//	  block groups     chain loop (sync)            one request per group            applied in order, one sync per group
//	producer           chain loop, at its slots     Mempool.Best(MaxBlockTxs)        block stops at the genesis limits
//	store commit       chain loop, one batch/block  -                                node stops: a write that fails is fatal
//	events             chain loop and admission,    events.Stream ring (Events.      blocking subscriber: publishers wait,
//	                   after commit / mempool add   Capacity, 16,384)                then it is demoted after StallTimeout;
//	                                                                                 lagging subscriber: told what it missed
//	p2p gossip in      gossipsub validators         validation queue 1,024, 10 s     dropped by gossipsub; a message
//	                   (netio/p2p)                  per message                      that times out is not relayed
//	p2p gossip out     one blocking event consumer  backlog of 65,536 transactions   newest left out of gossip (they
//	                                                                                 stay in the mempool)
//	p2p sync           sync loop, SyncPeers         verify 8 blocks ahead; groups    -
//	                   fetchers                     of 256 blocks / 50,000 txs
//	p2p serving        stream handlers              ServeRequests at once            waits 1 s, then answers "busy"
//
// The services run under one supervisor (internal/supervisor), started in
// this order and stopped in reverse: the chain loop, the network (when
// P2P is set), JSON-RPC, then extra services such as the admin listener.
// READY=1 is sent once all have started.
//
// Ordering guarantees: a block's Ready is committed to the store before the
// engine advances, and only then do readers, the mempool and the event
// stream see it (etcd-raft's Ready/Advance). Submissions never wait for the chain
// loop: they read the latest View and insert into the sharded mempool.
package node

// Queue capacities of the chain loop.
const (
	// BlockQueueDepth bounds block requests waiting for the chain loop
	// (submit_block and gossip: one block each; sync: one group each).
	BlockQueueDepth = 256
)
