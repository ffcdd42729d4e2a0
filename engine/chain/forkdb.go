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
	// final is the height of the last block its branch makes irreversible
	// (irreversibleOn this block), computed when it is inserted.
	final uint64
}

type heightSigner struct {
	height uint64
	signer koinos.Address
}

// forkDB holds the fork database. It is owned by the chain goroutine.
type forkDB struct {
	producers int // in the schedule: irreversibility needs more than 2/3
	root      *node
	head      *node
	nodes     map[koinos.Digest]*node
	// produced counts blocks per (height, signer) above the root, to detect
	// double production.
	produced map[heightSigner][]*node
}

func newForkDB(root *node, producers int) *forkDB {
	f := &forkDB{producers: producers, root: root, head: root, nodes: map[koinos.Digest]*node{root.topo.ID: root}, produced: map[heightSigner][]*node{}}
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
	n.final = f.irreversibleOn(n).topo.Height
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

// better is fork choice: the branch that makes the higher block
// irreversible wins, then the higher block, then the earlier timestamp,
// then the lower id.
//
// Irreversibility comes first (as in EOS's DPoS fork database): a longer
// branch fewer producers built on must not pull a node off the branch more
// than two thirds of them confirmed. Without it, under delays longer than
// a slot, honest producers that built on one branch switch to a taller one
// while another node has already counted their blocks toward the first
// branch's irreversibility; that node can then never follow the others
// (its irreversible block is not on their chain). With it, a node that
// sees the confirmations of a branch moves to it, and so do the producers.
func (f *forkDB) better(a, b *node) bool {
	if fa, fb := max(a.final, f.root.topo.Height), max(b.final, f.root.topo.Height); fa != fb {
		return fa > fb
	}
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
		if n != f.root && !n.tainted && f.better(n, best) {
			best = n
		}
	}
	return best
}

// irreversibleOn returns the highest block on the chain ending at head that
// more than two thirds of the producers have built on (signed it or a block
// above it), or the root if none above it has.
func (f *forkDB) irreversibleOn(head *node) *node {
	seen := make(map[koinos.Address]struct{}, f.producers)
	for n := head; n != f.root; n = n.parent {
		seen[n.signer] = struct{}{}
		if 3*len(seen) > 2*f.producers {
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
		if f.better(a, b) {
			return -1
		}
		if f.better(b, a) {
			return 1
		}
		return 0
	})
	return out
}
