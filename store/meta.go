package store

import (
	"encoding/binary"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// metaState is what the store keeps about the chain: the engine's Meta
// and the highest block stored on any fork (block_store's "highest").
// It is written in every batch, so it always describes exactly the
// blocks and indexes committed with it.
type metaState struct {
	found   bool
	meta    chain.Meta
	highest chain.Topology
	// nextSeq is the event log's next sequence number (eventlog.go).
	nextSeq uint64
}

const (
	// metaVersion 2 adds the event log's next sequence number; a version 1
	// record (a store from before the log) reads as sequence number 0.
	metaVersion   = 2
	topologySize  = 2*koinos.DigestSize + 8
	metaSizeV1    = 1 + koinos.DigestSize + 4*topologySize
	metaSize      = metaSizeV1 + 8
	metaVersionV1 = 1
)

func appendTopology(dst []byte, t chain.Topology) []byte {
	dst = append(dst, t.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, t.Height)
	return append(dst, t.Previous[:]...)
}

func readTopology(b []byte) (chain.Topology, []byte) {
	var t chain.Topology
	copy(t.ID[:], b)
	t.Height = binary.BigEndian.Uint64(b[koinos.DigestSize:])
	copy(t.Previous[:], b[koinos.DigestSize+8:])
	return t, b[topologySize:]
}

// encodeMeta lays the record out at fixed offsets: version, chain id, then
// head, LIB, checkpoint and highest as (id, height, previous).
func encodeMeta(dst []byte, m *metaState) []byte {
	dst = append(dst, metaVersion)
	dst = append(dst, m.meta.ChainID[:]...)
	dst = appendTopology(dst, m.meta.Head)
	dst = appendTopology(dst, m.meta.LIB)
	dst = appendTopology(dst, m.meta.Checkpoint)
	dst = appendTopology(dst, m.highest)
	return binary.BigEndian.AppendUint64(dst, m.nextSeq)
}

func decodeMeta(b []byte) (metaState, error) {
	var m metaState
	switch {
	case len(b) == metaSize && b[0] == metaVersion:
		m.nextSeq = binary.BigEndian.Uint64(b[metaSizeV1:])
	case len(b) == metaSizeV1 && b[0] == metaVersionV1:
	default:
		return m, corrupt("meta record of %d bytes, version %d (want %d bytes, version %d)", len(b), firstByte(b), metaSize, metaVersion)
	}
	b = b[1:]
	copy(m.meta.ChainID[:], b)
	b = b[koinos.DigestSize:]
	m.meta.Head, b = readTopology(b)
	m.meta.LIB, b = readTopology(b)
	m.meta.Checkpoint, b = readTopology(b)
	m.highest, _ = readTopology(b)
	if m.meta.LIB.Height > m.meta.Head.Height || m.meta.Checkpoint.Height > m.meta.LIB.Height {
		return m, corrupt("meta record has head %d, LIB %d, checkpoint %d out of order", m.meta.Head.Height, m.meta.LIB.Height, m.meta.Checkpoint.Height)
	}
	m.found = true
	return m, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
