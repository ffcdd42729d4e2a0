// Package bench is Ember's load-test harness: it loads a node with signed
// token transfers and reports what the chain committed, how fast, and how
// long each transaction took to reach a block, measured from the blocks
// themselves. `ember bench MODE` is a thin command over it.
//
// # Modes
//
//   - rpc: end to end through JSON-RPC. K funded accounts (keys derived from
//     a seed, or key files with --keys) each get their share of N transfers,
//     signed and encoded as JSON-RPC request objects before the clock
//     starts. C workers submit them over keep-alive connections, either as
//     fast as answers come (closed loop) or each at its due time i/R (open
//     loop, rate R), optionally B to a JSON-RPC batch. A follower polls
//     chain.get_head_info and reads every new block with
//     block_store.get_blocks_by_height to see each transaction included:
//     as blocks appear (--observe live, the default: the node serves them
//     under load, as it would an explorer), or after the last submission
//     (--observe deferred: the measured window holds no block serving;
//     inclusion times are the same, they come from the head polls).
//     With --sign-live (automatic above SignLiveAbove = 1,000,000
//     transactions) they are signed during the run instead; see Signing
//     live below.
//   - soak (make soak): a closed-loop probe, then an rpc run signed live
//     at half its committed TPS (or --rate) for an hour (--duration), the
//     node's memory sampled every 10 s; see Soak below.
//   - sweep: rpc at rising rates on one node, each step judged sustained or
//     not (Criteria), to find the saturation rate; then, by default, a step
//     at half of it, where latency targets are judged.
//   - engine: in-process, no RPC: blocks of pre-verified transfers applied
//     by engine/chain over a real store (AcceptBlock, store.Commit, Advance:
//     a peer's blocks), and the producer's path (Build, sign, Commit,
//     store.Commit, Advance). Signing and verifying happen before the
//     clock. The engine's own ceiling.
//   - verify: signatures per second of each scheme on 1 core and all cores,
//     three ways: keys.Verify alone (what sigverify.Verify does per
//     signature), keys.Verifier batches with key caches (what the sigverify
//     pool's workers do), and sigverify.Verify of whole transfers.
//   - suite (make bench): verify, then per scheme a closed-loop rpc run on a
//     fresh node and an rpc run at half the committed rate it reached.
//   - net (make bench-net): in one run, the suite's closed-loop run on a
//     fresh single node (the yardstick), then a network of N nodes loaded
//     the same way, then a fresh network of N nodes (or, with
//     --same-network, the same one) at half the committed rate the first
//     reached; see Networks below.
//   - sync (make bench-sync): in one run, the yardstick, then a chain of
//     B blocks of T transfers built in this process and served by a child
//     node to a fresh follower over p2p; see Sync below.
//
// The bench starts its own throwaway node by default: a temporary data
// directory, a dev genesis funding the K accounts, the block interval asked
// for, a mempool sized to hold the whole run and RPC limits that pass the
// largest batch and block. A single node runs without the network
// (p2p.listen empty). The node is a child process (`ember node`, this
// executable or --node-binary), so its CPU time and memory come from
// /proc/<pid> apart from the bench's; --node in-process runs it inside the
// bench (tests, CPU profiles); --rpc URL --keys DIR loads a node started by
// hand (ember bench init prepares one).
//
// # Workloads
//
// Options.Workload and EngineOptions.Workload (--workload) say what each
// transfer moves:
//
//   - native (default): the chain's token, Go code (engine/contracts).
//     Nothing below is done; the transfers are signed as they always were.
//   - wasm-token: a KCS-1 token contract, the wasm given as
//     Options.Contract (--contract FILE; make token-wasm builds
//     internal/sdkas's AssemblyScript token, written with Koinos's SDK, to
//     bin/token.wasm, so the bench itself never needs Node.js). Before the
//     clock starts: the bytecode is uploaded to ContractKey(seed)'s
//     account, derived from the seed like the senders and funded by the
//     bench's genesis (and by bench init's), which pays and signs; once
//     the upload is in a block, every account is minted WasmTokenMint,
//     16 mints to a transaction (the genesis limit of operations), paid
//     and signed by the contract account (the token's mint authority),
//     at most 512 pending at a time, and the bench waits until they are
//     all in blocks and reads two balances back. Then one transfer is
//     checked against the head without being included
//     (chain.submit_transaction with broadcast false; in the engine mode,
//     the chain's CheckTransaction), and the run's rc_limit is
//     WasmRCLimit of its rc_used (half as much again) instead of
//     DefaultRCLimit. The measured transactions are then call_contract
//     operations to the token's transfer entry point (0x27f576ca) with
//     koinos.contracts.token.transfer_arguments, one unit from account
//     i mod K to the next, signed in the same nonce order: the native
//     token's transfer has the same entry point and argument layout, so
//     the same builder signs both, pointed at the contract instead of the
//     native token (a test pins the bytes), and a native run does no work
//     for the workload at all. A setup transaction that reverts stops the
//     bench with the chain's reason (an upload that is not a valid
//     contract reverts with the VM's).
//
// Everything after the clock starts is the same for both workloads. The
// report's workload field (and its table's first line) says which ran,
// with the contract id, the rc_limit and the checked transfer's rc_used
// and compute. The engine mode builds the upload and the mints as setup
// blocks on its scratch chain and applies them, untimed, to both measured
// chains before their clocks; it reports compute_per_tx and rc_per_tx
// (the means over the measured transfers' receipts, both workloads) and,
// for wasm-token, reads every account's balance (balance_of) after each
// phase and fails unless it is what the transfers leave
// (TokenBalancesAfter). A reverted transfer fails the engine mode too; in
// the rpc modes it would be committed and counted (it is in a block), so
// Session.TokenBalances reads the balances for a caller that checks them,
// as the package's tests do. Supported by rpc, sweep and soak (through
// the Session) and engine; suite, net and sync refuse it (their targets
// and yardsticks are the native token's; sync builds native blocks).
//
// # Nonce order
//
// The node refuses a transaction whose nonce is not the account's pending
// nonce + 1, and requests on different connections are served in no set
// order. So each account belongs to one worker (account mod C), a worker has
// one request in flight, and a batch holds at most one transaction per
// account (hence B ≤ K/C). Transaction i is account (i mod K)'s
// (i div K)-th, so K consecutive transactions use K distinct accounts. A
// transaction refused for load (HTTP 503/504, JSON-RPC -32005, Koinos -206
// pending limit, "overloaded") is sent again, alone, with backoff, before
// its worker goes on: a retry, not an error. One refused for itself ends its
// account's run: the rest would fail on the nonce gap and are counted as
// skipped.
//
// # Clock, windows and rates
//
// t0 is taken after signing, after the follower has read the head, just
// before the first send. All times are since t0 on the monotonic clock,
// except block timestamps, which are the producer's wall clock (the same
// machine's clock for the bench's own node).
//
//   - committed_tps (full window): transactions found in blocks divided by
//     the time from the first submission to the moment the last of them was
//     seen. It includes the ramp-up and the drain, so it is the
//     conservative figure.
//   - steady_tps (steady window): from block timestamps only. Take the
//     blocks whose timestamps lie between the first submission plus a
//     warm-up (default max(2 block intervals, 10% of the submission time))
//     and the last submission: b_j … b_k. The rate is the run's
//     transactions in b_{j+1} … b_k over ts_k − ts_j. The blocks made while
//     the load was on, after ramp-up; the drain of a backlog is left out.
//   - submit_tps: transactions the node admitted, over the first
//     submission to the last admitting answer.
//
// # Latencies (milliseconds, per transaction)
//
//   - inclusion (p50_ms, p90_ms, p99_ms, max_ms): submission (the send of
//     its request; for a retried one the first send) → the return of the
//     head poll that first reported a height at or above its block. This is
//     when the bench could first know; its resolution is the poll interval
//     (default 10 ms) plus one RPC round trip. The block's body, read after,
//     only confirms which transactions it holds.
//   - block_time: submission → the block's header timestamp. The timestamp
//     is the slot's start, before the block was built, so this leaves out
//     building, storing and polling, and can be slightly negative for a
//     transaction taken in the moment between its slot's start and the
//     producer reading the mempool.
//   - ack: submission → the answer admitting it (the RPC ack).
//   - sched_lag (rated runs): due time i/R → actual send: the bench falling
//     behind the rate asked for (a worker still waiting on its last answer).
//   - irreversible (every run): a block's header timestamp → the head poll
//     (of the followed node) that first reported a last irreversible block
//     at or above its height; over the blocks from the first after t0 to
//     the last holding a run transaction. After the drain the follower
//     keeps polling until the last irreversible block reaches the head it
//     had then (at most 10 intervals, at least 3 s); blocks still not
//     irreversible are counted as unseen. With one producer a block is
//     irreversible at once; with four, once three distinct producers have
//     built on it: about two intervals later.
//
// Percentiles are nearest-rank: every figure is a latency some transaction
// had.
//
// # Networks (Options.Nodes > 1, the net mode)
//
// One genesis lists N producers (NetProducerKeys: node i signs with key
// i, key 0 being the single node's producer) and funds the accounts. The
// bench picks N free loopback ports and N identity keys first, so every
// node's p2p.peers can list all the others (a full mesh), starts the N
// nodes together and waits until each has shaken hands with every other
// ("peer connected" in its log) and a block produced after that has
// reached every node by gossip. (If after 15 s some handshake is still
// missing but every node has a peer, gossip reaching every node is enough;
// the report's propagation note and handshakes per node say so.)
//
// Worker w sends to node w mod N, so an account's transactions always go
// to one node, in nonce order; the follower reads node 0 only (every node
// holds the chain). node_cpu_s is then the sum over the nodes (each a
// child process, from /proc), node_rss_mb the largest peak, and
// node.per_node has each; metrics are summed over the nodes (so
// sigs_verified_per_tx counts every node's verification).
//
// Block propagation (report.propagation, from the nodes' JSON logs, whose
// "time" fields share this machine's clock): for every block produced
// between t0 and the end of the drain, its producer's "produced block"
// line (written once the block is stored and handed to the network) →
// each other node's "accepted block" line (written once the block,
// received live, is verified, applied and stored). Per block, max is the
// latest other node; each is every (block, other node) pair;
// p99_of_interval is max's p99 over the block interval. A block some other
// node never accepted live (it got it by sync, or never) is counted in
// not_live and left out of the distributions; off_chain counts produced
// blocks that are not on node 0's chain at the end.
//
// The net mode reports, for its scheme: single_committed_tps (the
// yardstick's committed_tps); yardstick_tps = single / N, what N nodes
// sharing this machine would commit if only their duplicated work cost
// anything (every node verifies and applies every transaction, so N nodes
// do N times one node's work); committed_tps and steady_tps of the
// network's closed-loop run; ratio = committed_tps / yardstick_tps (goal
// ≥ 0.8 at N = 4); half_rate = half the network's committed_tps, offered
// to a fresh network of the same shape (same_network false: a network the
// saturation left split would spoil every figure of the next run), and in
// that run p50/p99 inclusion in ms and intervals (goal p99 ≤ 2),
// propagation (goal p99 ≤ 10 % of an interval) and irreversibility (goal
// p99 ≤ 3 intervals, none unseen); per node, CPU seconds of both network
// runs and peak RSS; errors over all three runs (goal 0). After each
// network run it asks every node for its head and last irreversible block
// (heads_after_saturation, heads_after_half): the nodes agree when their
// last irreversible heights are equal and their heads within one block (a
// check of the network, not of speed).
//
// # Sync
//
// The source chain: B × T transfers of the engine mode's sequence, signed
// on every core and verified through a sigverify pool a chunk ahead of a
// builder that builds, signs, commits and stores each block as a producer
// does (chain.Build, Commit, store.Commit) into the source's data
// directory; genesis lists one producer (the source's key) and is dated
// B + 10 intervals in the past, so every slot is before now. build_s is
// that time; it is not compared with anything. The source node then runs
// on that directory with its producer disabled, so its head stays at B
// (no empty blocks); a fresh follower with the same genesis has the source
// as its only static peer.
//
// seconds: the follower's first handshake ("peer connected" in its log) →
// the first head poll (every 20 ms) at which its head equals the source's
// (height and id); start_seconds counts from the follower's process start
// instead. blocks_per_s = B / seconds, tx_per_s = B × T / seconds, ratio =
// tx_per_s / the yardstick's committed_tps (goal ≥ 1.2). follower_cpu_s
// and source_cpu_s: /proc user+system CPU over seconds (from the poll
// that first saw the handshake); follower_cpu_us_per_tx divides the
// follower's by B × T. machine_busy: the share of all cores busy over
// seconds, any process's (/proc/stat; the machine is shared). wire_bytes:
// the kernel's bytes_sent (tcp_info, read with ss(8) before the nodes
// stop) of the source's sockets to the follower: every byte of the
// connection, zstd-compressed sync batches, Noise and Yamux framing and
// head polls included (-1 without ss); block_bytes is the blocks'
// protobuf size for comparison. (The node exports no p2p byte counter on
// /metrics yet.)
//
// # Signing live
//
// A pre-signed run holds every transaction's request body, id and
// per-transaction times: about 1 kB each, so an hour at 8,000 tx/s (29
// million) would take some 30 GB and ten minutes of both cores before the
// clock. A live run (LoadSpec.SignLive) signs as it goes: a pool of
// GOMAXPROCS signers signs chunks of 64 consecutive transactions, a
// dispatcher hands them to their workers' queues in index order (so each
// account's nonces stay in order, as above), and the signers stop when
// SignAhead transactions (default DefaultSignAhead: two seconds of the
// rate plus one, at least 4,096) are signed and not yet handed on; the
// queues hold as many again. The clock starts once the queues are full
// (or hold the whole run). A worker whose next transaction is not signed
// yet waits for it, and the wait shows as sched_lag, so signers that
// cannot keep up are visible.
//
// The bookkeeping is bounded by what is in flight: a transaction is kept
// from its signing to its answer (body and account) and, once sent, until
// a block holds it (id and send time); it is then counted and dropped.
// Blocks are counted once irreversible, so a reorganization above the
// last irreversible block puts their transactions back in flight.
// Latencies are kept as counts, exact minimum, maximum and mean, and a
// uniform sample (reservoir) of 100,000 values per distribution:
// percentiles come from the sample (p99 within about ±0.07 percentile
// points), n, min, max and mean are exact. Every other figure above keeps
// its meaning; there is no samples.csv (no per-transaction data), and
// request_mb counts the bodies signed. A closed loop shares one dispatcher
// among its workers, so a worker far behind the others holds them up
// once its queue is full: live signing is meant for rated runs.
//
// The signers share the machine with the node: bench_cpu_s (this
// process's CPU over t0 → end of drain), bench_cpu_percent (the same in %
// of one core) and load.sign_busy_s (the signers' summed busy time, most
// of bench_cpu_s) say how much. The node's mempool is sized for a minute
// of the rate (LiveMempoolTxs), not the whole run.
//
// # Soak
//
// A soak is one live rated run, long, with the node's memory sampled by a
// goroutine every SampleEvery (10 s): its RSS (/proc VmRSS), Go heap in
// use and allocated (go_memstats_heap_inuse_bytes and _alloc_bytes from
// its /metrics), its CPU, this process's RSS, the machine's load average,
// and the run's transactions in blocks and admitted but not yet in one.
// soak.csv has a line per sample (written as sampled), soak.png the
// curves, soak.json the verdict and the run's report. The rate is --rate,
// or --rate-fraction (0.5) of the committed TPS of a closed-loop probe of
// --probe-txs (60,000) pre-signed transactions on the same node.
//
// Pass is: zero errors; the node kept up (steady_tps at least 90% of the
// rate: a node falling behind fills its mempool, and its memory then
// measures the backlog); and node RSS flat by DefaultFlatRule
// (FlatRule's comment has the reasoning): over the second half, a
// least-squares line growing under 5% of the mean an hour or rising less
// than the noise floor max(8 MB, 2%) across the half; and the largest
// sample of the last quarter at most 1.1 × the largest of the second
// quarter. The heap is judged by the same rule for the record only: the
// garbage collector's sawtooth is part of RSS already.
//
// # Errors
//
// errors = transactions − transactions found in blocks: refused by the node
// for themselves (rejected), without an answer (transport: the node may
// have them; if they reach a block they count as included), skipped after
// an earlier refusal of their account, admitted but not seen in a block
// once no new inclusion was seen for the drain time (lost). Transactions a
// time-capped closed loop (--duration without --rate) never offered are not
// counted in txs at all (not_offered).
//
// # Stable JSON fields
//
// report.json always has committed_tps, submit_tps, p50_ms, p90_ms, p99_ms,
// max_ms, errors, sig_ceiling_tps, scheme, block_interval_ms, txs, cpus,
// node_cpu_s, node_rss_mb and commit, with the meanings above and:
// sig_ceiling_tps is the scheme's best signatures per second on all cores
// (GOMAXPROCS goroutines) over the single and batch paths, measured before
// the node starts; cpus is GOMAXPROCS; node_cpu_s is the node process's
// user+system CPU over t0 → end of drain (summed over the nodes of a
// network), node_rss_mb its peak resident memory (VmHWM; a network's
// largest), both -1 when the node is not a child process; commit names the
// code (build version, or the checkout's commit).
//
// # Designs rejected
//
// Inferring inclusion from account nonces (chain.get_account_nonce after
// each block) costs the node less than serving whole blocks, but it infers
// rather than sees, and races the head between calls. Decoding blocks into
// protobuf (rpcgw/client) costs the bench several times what a fastjson
// walk of the ids does, on a machine it shares with the node. Sending
// through rpcgw/client would encode each call's params inside the measured
// window; the bench sends bytes encoded beforehand.
package bench
