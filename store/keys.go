package store

import (
	"encoding/binary"

	"github.com/emberchain/ember/engine/koinos"
)

// Keyspaces. Each key starts with one byte naming its space; doc.go says
// why each looks the way it does. Heights and sequence numbers are
// big-endian so that byte order is numeric order.
const (
	spaceVersion = 'v' // v → format version string
	spaceMeta    = 'm' // m → meta record (meta.go)
	spaceIndexes = 'x' // x → one byte: which indexes the store keeps (store.go)
	spaceBlock   = 'b' // b ‖ block id(32) → block record (record.go)
	spaceCanon   = 'h' // h ‖ height(8) → block id(32), irreversible blocks only
	spaceFork    = 'f' // f ‖ height(8) ‖ block id(32) → "", stored blocks not yet irreversible
	spaceTx      = 't' // t ‖ tx id[:8] ‖ block id[:8] → uvarint(index of the tx in the block)
	spaceHistory = 'a' // a ‖ address(25) ‖ first seq(8) → history value (history.go)
	spaceState   = 's' // s ‖ serialized database_key → state value
	spaceLog     = 'e' // e ‖ first seq(8) → event log record (logrecord.go)
	spaceCursor  = 'c' // c ‖ consumer name → its cursor (logconsumers.go)
)

const (
	// txKeyIDLen and txKeyBlockLen are how much of the transaction id and
	// of the block id a transaction index key keeps. Both are truncated:
	// a read checks the full transaction id inside the block, so a
	// collision costs one wasted block read, never a wrong answer.
	txKeyIDLen    = 8
	txKeyBlockLen = 8
	txKeyLen      = 1 + txKeyIDLen + txKeyBlockLen

	blockKeyLen   = 1 + koinos.DigestSize
	canonKeyLen   = 1 + 8
	forkKeyLen    = 1 + 8 + koinos.DigestSize
	historyPrefix = 1 + koinos.AddressSize
	historyKeyLen = historyPrefix + 8
	logKeyLen     = 1 + 8
)

var (
	keyVersion = []byte{spaceVersion}
	keyMeta    = []byte{spaceMeta}
	keyIndexes = []byte{spaceIndexes}
)

func blockKey(dst []byte, id koinos.Digest) []byte {
	dst = append(dst, spaceBlock)
	return append(dst, id[:]...)
}

func canonKey(dst []byte, height uint64) []byte {
	dst = append(dst, spaceCanon)
	return binary.BigEndian.AppendUint64(dst, height)
}

func forkKey(dst []byte, height uint64, id koinos.Digest) []byte {
	dst = append(dst, spaceFork)
	dst = binary.BigEndian.AppendUint64(dst, height)
	return append(dst, id[:]...)
}

func txKey(dst []byte, txID []byte, blockID koinos.Digest) []byte {
	dst = append(dst, spaceTx)
	dst = append(dst, txID[:txKeyIDLen]...)
	return append(dst, blockID[:txKeyBlockLen]...)
}

func historyKey(dst []byte, a *koinos.Address, firstSeq uint64) []byte {
	dst = append(dst, spaceHistory)
	dst = append(dst, a[:]...)
	return binary.BigEndian.AppendUint64(dst, firstSeq)
}

func stateKey(dst []byte, databaseKey []byte) []byte {
	dst = append(dst, spaceState)
	return append(dst, databaseKey...)
}

// prefixEnd returns the first key after every key starting with prefix
// (prefix must not be all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func decodeForkKey(k []byte) (height uint64, id koinos.Digest) {
	height = binary.BigEndian.Uint64(k[1:9])
	copy(id[:], k[9:])
	return height, id
}
