package koinos

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"sync"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// vtMessage is what the vtprotobuf generator adds to every message.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
}

// HashMessage returns sha256 of the canonical serialization of m. scratch is
// reused when large enough and returned for the next call, so a loop hashing
// many messages allocates once.
func HashMessage(m vtMessage, scratch []byte) (Digest, []byte) {
	n := m.SizeVT()
	if cap(scratch) < n {
		scratch = make([]byte, n, n+n/2)
	}
	buf := scratch[:n]
	// Sizes were just computed, so marshaling into an exactly sized buffer
	// cannot fail.
	_, _ = m.MarshalToSizedBufferVT(buf)
	return sha256.Sum256(buf), scratch
}

// scratchPool holds serialization buffers for hashing: ids and merkle
// leaves are computed for every transaction, and a pooled buffer saves an
// allocation each time.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func hashPooled(m vtMessage) Digest {
	p := scratchPool.Get().(*[]byte)
	d, buf := HashMessage(m, *p)
	if cap(buf) <= 64<<10 { // do not keep huge buffers around
		*p = buf[:0]
	}
	scratchPool.Put(p)
	return d
}

// TransactionID returns the digest whose multihash is the transaction id:
// sha256 of the serialized transaction header.
func TransactionID(h *protocol.TransactionHeader) Digest { return hashPooled(h) }

// BlockID returns the digest whose multihash is the block id: sha256 of the
// serialized block header.
func BlockID(h *protocol.BlockHeader) Digest { return hashPooled(h) }

// OperationMerkleRoot is the merkle root over sha256(serialized operation),
// one leaf per operation, in order.
func OperationMerkleRoot(ops []*protocol.Operation) Digest {
	if len(ops) == 1 {
		return hashPooled(ops[0]) // the root of one leaf is the leaf
	}
	var small [8]Digest
	leaves := small[:0]
	if len(ops) > len(small) {
		leaves = make([]Digest, 0, len(ops))
	}
	for _, op := range ops {
		leaves = append(leaves, hashPooled(op))
	}
	return MerkleRoot(leaves)
}

// SignaturesDigest is sha256 of the transaction's signatures concatenated,
// the second merkle leaf of each transaction in a block.
func SignaturesDigest(sigs [][]byte) Digest {
	h := sha256.New()
	for _, s := range sigs {
		h.Write(s)
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// TransactionMerkleRoot is the block's merkle root over two leaves per
// transaction, in order: sha256(serialized header), sha256(signatures).
func TransactionMerkleRoot(txs []*protocol.Transaction) Digest {
	leaves := make([]Digest, 0, 2*len(txs))
	var scratch []byte
	for _, tx := range txs {
		var d Digest
		d, scratch = HashMessage(tx.GetHeader(), scratch)
		leaves = append(leaves, d, SignaturesDigest(tx.GetSignatures()))
	}
	return MerkleRoot(leaves)
}

// StateKey is one key of chain state: an object space and a key within it.
type StateKey struct {
	System bool
	Zone   []byte
	Space  uint32
	Key    []byte
}

// DatabaseKey returns the serialized koinos.chain.database_key for k, the
// byte string that the state merkle root sorts and hashes.
func (k StateKey) DatabaseKey() []byte {
	m := &chainpb.DatabaseKey{
		Space: &chainpb.ObjectSpace{System: k.System, Zone: k.Zone, Id: k.Space},
		Key:   k.Key,
	}
	b, _ := m.MarshalVT()
	return b
}

// DeltaEntry is one write of a block's state delta: the serialized
// database_key and the new value, or Removed for a deletion.
type DeltaEntry struct {
	DatabaseKey []byte
	Value       []byte
	Removed     bool
}

// StateMerkleRoot is the Koinos state root of one block: it commits to that
// block's delta only. Keys are sorted bytewise; each contributes two leaves,
// sha256(key) then sha256(value) (sha256 of nothing when removed).
// entries is sorted in place.
func StateMerkleRoot(entries []DeltaEntry) Digest {
	slices.SortFunc(entries, func(a, b DeltaEntry) int { return bytes.Compare(a.DatabaseKey, b.DatabaseKey) })
	leaves := make([]Digest, 0, 2*len(entries))
	for _, e := range entries {
		v := e.Value
		if e.Removed {
			v = nil
		}
		leaves = append(leaves, sha256.Sum256(e.DatabaseKey), sha256.Sum256(v))
	}
	return MerkleRoot(leaves)
}
