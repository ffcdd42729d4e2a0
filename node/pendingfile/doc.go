// Package pendingfile reads and writes pending.bin, the mempool's
// transactions saved at a graceful shutdown for the next start.
//
// Data flow: at shutdown, after the JSON-RPC gateway has drained, the node
// (node/pending.go) takes the pool's transactions best first and Write puts
// them into DataDir/pending.bin through internal/atomicfile (written whole
// or not at all, mode 0600). At the next start Read gives them back, the
// node sends each through admission again (verify, check, insert) and
// removes the file. A crash loses the pool; only blocks are durable.
//
// Format: "EMBERPENDING1\n", then per transaction a uvarint length, the
// serialized transaction and its CRC-32C (big-endian). Read stops at the
// first damaged record (bad length, truncation, checksum, undecodable
// transaction) and returns the transactions before it with an error that
// says what is wrong and after how many; it never makes a transaction up.
package pendingfile
