// Package sigverify turns decoded transactions into *VerifiedTx values: it
// runs the stateless checks (form, limits, chain id, id, operation merkle
// root), verifies every signature (Koinos secp256k1 recovery or the Ed25519
// fast lane) and checks that the payer signed. A *VerifiedTx can only be
// made here, so the engine can require one and never verify twice.
//
// There are two ways in. Verify and VerifyBlock do the work on the calling
// goroutine; they are the reference, and what replay and tests use. The
// Pool is the node's verification stage: the same checks with the same
// results, on every core, batched, behind a verify-once cache and
// per-source admission limits. Its results are identical to Verify's
// (same VerifiedTx contents, same error code and text for every invalid
// input): TestPoolMatchesVerify, TestPoolVerifyBlockMatches and
// FuzzVerifyTx hold it to that, and engine/chain's metamorphic test
// applies the same blocks through pools of every shape and compares
// receipts and state roots.
//
// # Stages and who owns what
//
// A submission (VerifyTx) passes through four hands:
//
//  1. The caller's goroutine (an RPC handler, a gossip validator) runs
//     precheck — the stateless checks and the id, merkle and signature
//     digests, about 0.5 µs — then looks the transaction up in the cache.
//     A finished outcome, valid or invalid, is the answer: no queue, no
//     worker. An identical verification already in flight is joined: the
//     caller waits on it. Otherwise the caller creates the in-flight entry
//     (it becomes its owner), takes an in-flight slot of its source, and
//     puts a job on a worker's queue.
//  2. The queue owns the job until a worker takes it.
//  3. The worker owns it from then until it closes the entry's done
//     channel: it verifies the signatures, checks that the payer (and
//     the payee when it holds the nonce) signed, records the outcome in
//     the cache entry, scores the source and frees its slot.
//  4. Everyone waiting on the entry — the owner and any joiners — reads the
//     outcome after done is closed, and builds its own *VerifiedTx from
//     its own precheck and the shared signer list.
//
// Nothing on this path takes a lock shared by all requests: the cache is
// 64 independently locked shards chosen by key, a known source is found in
// a sync.Map without locking, and each worker's queues are its own
// channels. The only shared word is the sequence counter that picks a
// worker.
//
// # Queues: capacity and what happens when full
//
// Each worker has two bounded queues of QueueDepth entries (default 1024):
// a block lane and a submission lane. A worker always drains its block
// lane first, so a block from a peer is not stuck behind a flood of
// mempool submissions. Jobs go to worker seq % N (Firedancer's verify
// tiles), or, when that queue is full, to the next worker with room.
//
//   - A submission that finds every submission queue full fails at once
//     with ErrOverloaded: the RPC layer answers "busy, retry", a gossip
//     validator drops the message. Nothing blocks forever, and the work
//     already queued drains at full speed.
//   - A block's chunk that finds every block queue full waits for room
//     (or for ctx, or Close): a block is admitted as a whole — its size is
//     bounded by the chain's limits — and must be verified to make
//     progress, so back-pressure goes to whoever feeds blocks (sync).
//   - A requester that gives up (ctx) withdraws from the entry; when a
//     worker reaches a job nobody waits for any more it drops it
//     unverified (Stats.Skipped), so a storm of timed-out requests does
//     not cost a storm of verifications.
//   - Close wakes every waiter with ErrClosed and abandons queued jobs.
//
// # Batching
//
// A worker takes one queue entry (waiting if there is none), then, without
// waiting, whatever else is queued, until it holds MaxBatch signatures
// (default 128), and hands them to its keys.Verifier in one call. When the
// pool is idle a lone transaction is verified at once: batching costs no
// latency, and batches grow with load, which is when they pay.
//
// Before draining, a worker that found only one entry yields once
// (runtime.Gosched). The channel send that woke it also made it the next
// goroutine to run on the sender's P (Go's runnext slot), ahead of every
// other submitter already runnable; without the yield, a worker sharing a
// core with its submitters verified one transaction per wake-up. The
// yield doubled throughput at GOMAXPROCS=1 (30 → 16 µs/sig, path=tx) and
// returns at once when nothing else is runnable.
//
// Under load a small batch waits a little for company. Wallets send one
// transaction per request, so their submissions reach the workers one at
// a time, and a worker that verified whatever was queued made batches of 1
// to 7 (ember_sigverify_batches_total): an Ed25519 batch of 1 or 2 costs
// about twice as much per signature as one of 8 or more. So a worker whose
// recent batches held more than one transaction without waiting (a moving
// average), and whose batch holds fewer than 16 signatures, waits up to
// GatherWindow (200 µs) for more before it verifies. A worker that has
// been seeing lone transactions — an idle node, a single client — never
// waits.
//
// keys.Verifier checks the Ed25519 signatures of a batch with one
// multiscalar multiplication (curve25519-voi's BatchVerifier) in runs of
// up to keys.MaxEd25519Batch, and secp256k1 signatures one by one (there
// is no batch recovery). It keeps, per worker and without locks, the
// expanded form of recent Ed25519 keys (their precomputed multiples,
// ~1.5 KiB each; the key is decompressed once instead of per signature)
// and the address of recent keys of both schemes (two SHA-256 and a
// RIPEMD-160 saved per signature). If a batch fails, every entry is
// checked again alone, so the result of each signature is exactly its
// single-verification result.
//
// Jobs from suspect sources (below) are checked one signature at a time,
// after and apart from the others' batch: one invalid signature in a batch
// sends the whole batch down that serial path, so a source that sends
// mostly invalid signatures must not share batches with anyone.
//
// A block's transactions are split into one part per worker, each on its
// own goroutine, in two phases. In the first,
// each part prechecks its transactions and hashes them into the roots of
// its merkle chunks (16 transactions, 32 leaves: a whole subtree, since
// Koinos's tree is built from the left), while the caller checks the
// producer's signature. Then the caller checks the transaction merkle root
// from the chunk roots. Only if the header and the root hold does the
// second phase queue the signatures, one chunk of about
// signatures/workers (at most MaxBatch) per part. So a block with a bad
// header costs one signature plus whatever hashing the other parts did
// meanwhile (they stop when it fails), and a genuine header replayed with
// other transactions costs hashing only (TestBlockMerkleRootCheckedBeforeSignatures);
// before the root moved here from the engine, such a block had every
// transaction signature checked before apply noticed. The order of checks,
// and so which error a bad block gets, is VerifyBlock's: form and header,
// every precheck, the merkle root, then signatures.
//
// # The verify-once cache, and poisoning
//
// The outcome of everything after precheck — the signers, or the error of
// the first failing signature, or the authorization failure — depends
// only on the header (fixed by the transaction id) and on the exact list
// of signatures. So the cache key is sha256(id ‖ sha256(signatures
// concatenated) ‖ the length of each signature), and outcomes of both
// kinds are cached under it. Precheck always runs on the caller's own
// copy (it is cheap, and it is what catches operations, unknown fields or
// a size that differ between copies with the same id), so a cached
// outcome is only ever applied to a transaction that passed precheck
// itself.
//
// Keying by id alone would be wrong both ways: anyone can take a valid
// transaction from the mempool, replace its signatures and send the copy
// with the same id. If the copy arrives first, its invalid verdict would
// reject the real transaction (poisoning); if the real one arrives first,
// the copy would be accepted with signatures nobody checked, and a node
// that had not seen the original would reject the block containing the
// copy: a consensus split. The lengths in the key close a subtler hole:
// Koinos's merkle leaf for signatures, sha256 of the signatures
// concatenated, does not separate them, and a valid [Ed25519 (97 bytes),
// secp256k1 (65)] list and an invalid [65, 97] list of the same bytes
// share the id and that digest whenever the Ed25519 S happens to start
// with 0xED (1 in 256). TestCachePoisoning builds that pair and checks
// both orders of arrival, in submissions and in blocks. (The same
// ambiguity means a block id does not fix its transactions' signature
// boundaries: a relayer can turn a valid block into an invalid one with
// the same id and producer signature. Nothing may remember a block id as
// invalid because of a transaction signature.)
//
// Valid and invalid outcomes are bounded separately (CacheSize, default
// 65,536, and InvalidCacheSize, default a quarter of it), each evicted
// oldest first in per-shard rings, so distinct invalid transactions can
// never push out the valid ones that the next blocks will contain. Repeats
// of one invalid transaction cost a lookup each (TestFloodDoesNotStarveValid:
// 1,000 repeats, one verification). An entry is about 150 bytes plus 25
// per signer, and an invalid one also holds its error: on the order of
// 15 MiB at the defaults.
//
// The same map tracks verifications in flight: the cache is checked before
// a job is queued (a finished outcome, or a verification to join) and the
// outcome is published into the same entry after it is verified, which
// wakes every waiter. So a transaction verified on submission is not
// verified again inside a block, and two concurrent submissions of one
// transaction verify once (TestVerifyOnce: 64 concurrent, one
// verification).
//
// # Admission: floods of invalid signatures
//
// Each source (peer id or client IP, as the caller names it) may have
// MaxInFlightPerSource transactions queued or in verification (default
// 2 × Workers × MaxBatch: enough for one source alone to keep every
// worker's batch full, a quarter of the submission queues). Beyond that it
// gets ErrSourceLimit at once. A source's score rises by one with each
// invalid transaction (failed precheck, cached invalid, verified invalid)
// and halves with each valid one — a measure of recent behaviour that
// needs no clock, which the engine may not read (so no token bucket). At
// SuspectThreshold (default 8) the source is suspect: an eighth of the
// in-flight limit, and its signatures checked apart from everyone else's
// batches. Idle sources are forgotten beyond MaxSources.
//
// This bounds what one source, or a few, can take; it does not stop many
// sources at once (a Sybil flood can still fill the queues, and then
// submissions get ErrOverloaded). That is the network layer's job: the
// pool's errors and the invalid verdicts it returns are what peer scoring
// needs.
//
// # Signature libraries and rules (engine/keys)
//
// Figures are from this package's and engine/keys' benchmarks on a 2-vCPU
// AMD EPYC VM shared with other engineers' builds, where identical runs
// differ by 5-20%; docs/benchmarks.md has every series with its time,
// load and command. Medians of 8 interleaved runs, 2026-11-24 23:07 UTC,
// µs of wall time per signature at 1 / 2 cores:
//
//	voi batch of 256, keys expanded (the fastest raw call)   8.49 / 4.46
//	keys.Verifier, runs of 256 (key caches, prescreen)       8.85 / 4.60
//	Pool, Ed25519 blocks of 2,048                            10.39 / 5.48  (1.90x)
//	Pool, Ed25519 blocks of 256                              10.34 / 6.09  (1.70x)
//
// The pool costs about 22% more per Ed25519 signature than the raw batch:
// 4% is keys.Verifier's prescreen and caches, the rest precheck (~0.5 µs a
// transaction: id, operation merkle root, signatures digest), the cache
// key, queues and hand-back. For secp256k1, whose arithmetic is four times
// dearer, the stage is within a few percent of libsecp256k1. Blocks of 256
// give each of two workers one batch of 128, and the hand-offs between
// phases (goroutine wake-ups take tens of µs on this VM) cost about a
// tenth of such a block's time; blocks of 2,048 amortize them.
//
// Ed25519: curve25519-voi, single and batch. It is the fastest here by a
// wide margin (its AVX2 backend), and the only one of the three with batch
// verification; crypto/ed25519 and circl also verify with the cofactorless
// equation, which no batch can reproduce, so a signature could pass alone
// and fail in a batch or the reverse. The rules (keys.Ed25519VerifyOptions)
// are RFC 8032 / FIPS 186-5 with the cofactored equation — S < L, R and A
// canonical encodings — plus one check FIPS 186-5 leaves out: A must not be
// a small-order point. A small-order key "signs" every message with S = 0,
// R = identity, so its address would be spendable by anyone. Single and
// batch paths apply the same options; signatures that a batch could not
// even decode (S ≥ L, non-canonical R or A, small-order A) are refused
// before the batch with byte comparisons, since one such entry would send
// the whole batch down the serial path. TestEd25519Speccheck and
// TestEd25519Adversarial check single and batch agree on the "Taming the
// many EdDSAs" vectors, the ZIP-215 small-order set, S+L twins and random
// damage, alone and at random positions in batches of 1 to 65.
//
// secp256k1: libsecp256k1 through go-ethereum's cgo binding when cgo is
// on (about 3x decred's pure Go), decred's with `-tags purego` or
// CGO_ENABLED=0. Koinos's rules are checked in Go before either runs:
// byte 0 in [31, 33] with recovery id byte0 >> 5 (so 33 means 1), s ≤ n/2,
// r and s in [1, n). The implementation only decides whether a key
// recovers, so both give the same key or the same error for every input:
// TestSecp256k1ImplementationsAgree and TestSecp256k1KoilibVectors run
// them side by side on koilib's vectors, every header byte, every single
// bit flip, high-S twins, r or s zero, n, p or above, r + n, and
// signatures whose key would be the point at infinity.
//
// # Tried and rejected
//
//   - One job per channel send for blocks: a worker woken by the first send
//     started on a batch of one or two while the caller was still
//     prechecking, and the second core bought almost nothing. Chunks of
//     signatures/workers fixed the batches; prechecking the parts in
//     parallel then took the block path at two cores from about 11 to
//     about 8.7 µs/sig in one session.
//   - Batches of 64 Ed25519 signatures: curve25519-voi switches from Straus
//     with precomputed tables to Pippenger at 94 entries, and Pippenger
//     keeps getting cheaper (14 µs/sig at 64, 12 at 128, 11 at 256, 10 at
//     1024).
//   - Batches of at most 128 (until 2026-11-24): 256 made the whole stage
//     4-6% cheaper per signature on one core (block path 10.8-11.1 →
//     10.4 µs), and one bad signature in a full batch now costs ~7 ms of
//     serial re-checks instead of ~3.5; suspect sources never share a
//     batch, and a block with a bad signature is rejected anyway.
//   - A cache keyed by (id, merkle signatures digest): poisonable (above).
//   - One cache for both outcomes: a flood of distinct invalid transactions
//     evicted the valid ones.
//   - crypto/rand for every batch's coefficients: one getrandom call per
//     batch; a ChaCha8 stream per worker, seeded once, is as unpredictable
//     to whoever chose the signatures.
//   - A token bucket per source: needs a clock.
//   - Work stealing (a worker about to wait takes a block chunk queued at
//     another): no measurable change on blocks of 256 or 2,048 at two
//     cores (eight alternating pairs, 2026-11-25, new/old median 1.00 and
//     0.99 with ±20% noise), so not kept.
package sigverify
