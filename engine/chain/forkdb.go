package chain

import (
	"bytes"
	"slices"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/state"
)

// node is a block in the fork database: the blocks above the last
// irreversible one (the root), on every fork, each with its state delta.
type node struct {
	entry     *BlockEntry // nil for the genesis root
	txs       []*sigverify.VerifiedTx
	topo      Topology
	parent    *node
	children  []*node
	delta     *state.Delta // nil once merged into the base (the root)
	stateRoot koinos.Digest
	timestamp uint64
	signer    koinos.Address
	// tainted: this block or an ancestor above the root shares its height
	// and signer with another block (double production); it cannot be head.
	tainted bool
}

type heightSigner struct {
	height uint64
	signer koinos.Address
}

// forkDB holds the fork database. It is owned by the chain goroutine.
type forkDB struct {
	root  *node
	head  *node
	nodes map[koinos.Digest]*node
	// produced counts blocks per (height, signer) above the root, to detect
	// double production.
	produced map[heightSigner][]*node
}

func newForkDB(root *node) *forkDB {
	f := &forkDB{root: root, head: root, nodes: map[koinos.Digest]*node{root.topo.ID: root}, produced: map[heightSigner][]*node{}}
	return f
}

func (f *forkDB) get(id koinos.Digest) *node { return f.nodes[id] }

// size is the number of blocks above the root.
func (f *forkDB) size() int { return len(f.nodes) - 1 }

// insert adds n under its parent and records double production.
func (f *forkDB) insert(n *node) {
	n.parent.children = append(n.parent.children, n)
	f.nodes[n.topo.ID] = n
	n.tainted = n.parent.tainted
	key := heightSigner{n.topo.Height, n.signer}
	same := append(f.produced[key], n)
	f.produced[key] = same
	if len(same) > 1 {
		for _, m := range same {
			taint(m)
		}
	}
}

func taint(n *node) {
	if n.tainted {
		return
	}
	n.tainted = true
	for _, c := range n.children {
		taint(c)
	}
}

// better is fork choice: the higher block wins, then the earlier
// timestamp, then the lower id.
func better(a, b *node) bool {
	if a.topo.Height != b.topo.Height {
		return a.topo.Height > b.topo.Height
	}
	if a.timestamp != b.timestamp {
		return a.timestamp < b.timestamp
	}
	return bytes.Compare(a.topo.ID[:], b.topo.ID[:]) < 0
}

// chooseHead returns the best untainted block; the root when every block
// above it is tainted.
func (f *forkDB) chooseHead() *node {
	best := f.root
	for _, n := range f.nodes {
		if n != f.root && !n.tainted && better(n, best) {
			best = n
		}
	}
	return best
}

// irreversibleOn returns the highest block on the chain ending at head that
// more than two thirds of the producers have built on (signed it or a block
// above it), or the root if none above it has.
func (f *forkDB) irreversibleOn(head *node, producers int) *node {
	seen := make(map[koinos.Address]struct{}, producers)
	for n := head; n != f.root; n = n.parent {
		seen[n.signer] = struct{}{}
		if 3*len(seen) > 2*producers {
			return n
		}
	}
	return f.root
}

// path returns the blocks from (not including) ancestor a up to n, oldest
// first.
func path(a, n *node) []*node {
	var out []*node
	for ; n != a; n = n.parent {
		out = append(out, n)
	}
	slices.Reverse(out)
	return out
}

// commonAncestor returns the nearest block that is an ancestor of (or is)
// both a and b.
func commonAncestor(a, b *node) *node {
	for a.topo.Height > b.topo.Height {
		a = a.parent
	}
	for b.topo.Height > a.topo.Height {
		b = b.parent
	}
	for a != b {
		a, b = a.parent, b.parent
	}
	return a
}

// advanceRoot makes lib the root: the blocks from the old root up to it are
// merged into base, oldest first, and every block not descending from lib
// is dropped. It returns the merged blocks.
func (f *forkDB) advanceRoot(lib *node, base *state.Base) []*node {
	merged := path(f.root, lib)
	for _, n := range merged {
		base.Merge(n.delta)
	}
	for _, c := range lib.children {
		c.delta.Detach()
	}
	lib.delta = nil
	// Keep only lib's descendants.
	keep := map[koinos.Digest]*node{lib.topo.ID: lib}
	var walk func(*node)
	walk = func(n *node) {
		for _, c := range n.children {
			keep[c.topo.ID] = c
			walk(c)
		}
	}
	walk(lib)
	f.nodes = keep
	for k, ns := range f.produced {
		if k.height <= lib.topo.Height {
			delete(f.produced, k)
			continue
		}
		ns = slices.DeleteFunc(ns, func(n *node) bool { return keep[n.topo.ID] == nil })
		if len(ns) == 0 {
			delete(f.produced, k)
		} else {
			f.produced[k] = ns
		}
	}
	lib.parent = nil
	lib.txs = nil
	f.root = lib
	return merged
}

// leaves returns the fork heads: blocks without children, best first.
func (f *forkDB) leaves() []*node {
	var out []*node
	for _, n := range f.nodes {
		if len(n.children) == 0 {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *node) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return out
}
