// Package mempool holds verified transactions waiting for a block.
//
// # Shape
//
// Transactions are kept per nonce account (the payee when it holds the
// nonce, else the payer) in a queue of consecutive nonces: the queue's first
// entry carries the account's nonce at the head plus one, and each next
// entry the nonce after it. A transaction is admitted only if it extends
// its account's queue by exactly one (Koinos: nonce = pending nonce + 1);
// no gaps, no replacement. Across accounts, transactions are ordered by
// arrival (a global sequence number), and Best(n) merges the account
// queues by that order while never taking a nonce before its predecessor,
// so the producer fills blocks first-come first-served, as Koinos does.
//
// Each payer's pending rc_limits are reserved against its mana at the head
// (Koinos's mempool rule): the sum of the rc_limits of its pending
// transactions may not exceed the mana it has, so a block can always pay
// for what the pool promised.
//
// # Concurrency: who owns what
//
// The pool is split into shards by account. A shard's mutex guards its
// account queues and its payers' reservations; nothing else is shared on
// the insert path but three atomics (the arrival sequence and the global
// count and byte totals). Add takes at most one shard lock at a time: it
// reserves rc in the payer's shard, releases that lock, then appends in the
// nonce account's shard, and gives the reservation back if the append
// fails. Holding both locks would need a lock order across shards; holding
// one makes deadlock impossible and keeps the critical sections to a map
// lookup and an append.
//
// The chain loop calls Update after every block it makes durable: included
// transactions leave, transactions of blocks orphaned by a reorg come
// back, and queues whose nonces the new head has passed are trimmed.
// Expire runs on a timer. Best runs in the producer; it copies each
// shard's queue heads under the shard lock and merges outside it. None of
// these holds a lock across shards, so submissions never wait for a block
// to be applied — the opposite of a mempool lock held across a commit.
//
// # Limits and what happens when full
//
// MaxTransactions and MaxBytes bound the whole pool; MaxPerAccount bounds
// one account's queue; Expiry drops transactions that waited too long
// (default 120 s, as Koinos). A full pool rejects the new transaction with
// ErrFull and a message saying which limit was hit; nothing already
// admitted is evicted to make room, because an admitted transaction was
// acknowledged to its sender. Removing a transaction (expired, or failed
// when the producer tried it) also drops the later nonces of its account,
// which could never be included without it.
//
// # Tried and rejected
//
//   - One mutex over the whole pool: simplest, but every submission then
//     waits for Update and Best, which walk the pool.
//   - A goroutine owning the pool, fed by a channel: serializes all
//     submissions through one core, which is the ceiling we are avoiding.
//   - A lock-free skip list ordered by arrival: Best is easier but nonce
//     order per account still needs per-account state, and the reservation
//     needs per-payer sums, so the shards are needed anyway.
package mempool
