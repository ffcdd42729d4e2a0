package bench

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/kjson"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
)

// blockObs is one block of the head chain as the follower saw it.
type blockObs struct {
	Height  uint64
	ID      koinos.Digest
	TsMs    int64 // header timestamp (Unix ms): the producer's slot time
	SeenNs  int64 // since t0: the head poll that first showed this height
	FetchNs int64 // since t0: when its transactions were read
	Txs     int   // all transactions in it
	Bench   int   // this run's transactions in it
	txs     []int32
	live    []*liveTx // a live run's, until folded into its figures
}

// follower learns from the chain itself which block holds each
// transaction. Two goroutines: the poller asks for the head every poll
// interval and records when each height was first reported; the reader
// reads the new blocks' bodies and matches their transaction ids. A
// block's "seen" time is that first report — the earliest the bench could
// know of it — so a slow read of a large body (tens of megabytes of JSON)
// never delays the timing of the blocks after it.
//
// blockOf[i] (index into blocks, -1 for none) is written by the reader
// with atomic stores; blocks, lastHeight and lastID belong to the reader.
type follower struct {
	c       *conn
	p       *plan     // pre-signed run
	live    *liveBook // live run (p is nil, and so is blockOf)
	t0      time.Time
	poll    time.Duration
	blocks  []*blockObs
	blockOf []int32

	lastHeight uint64
	lastID     koinos.Digest

	// Written by the poller, read by the reader.
	mu struct {
		sync.Mutex
		seenAt []int64 // [k]: when height startHeight+1+k was first reported
		headID koinos.Digest
		// libAt[k]: when a poll first reported a last irreversible block
		// at or above startLIB+1+k.
		libAt []int64
	}
	startHeight uint64
	startLIB    uint64
	headHeight  atomic.Uint64
	libHeight   atomic.Uint64
	wake        chan struct{}

	// deferBodies holds block reads back until catchUp is set (after the
	// last submission), so the node serves no blocks while it is being
	// measured; head polls still time every block.
	deferBodies bool
	catchUp     atomic.Bool

	included atomic.Int64 // transactions of the plan seen in blocks
	bytes    atomic.Int64 // response bytes read (heads and blocks)
	polls    atomic.Int64
	reorgs   int
	folded   int // blocks of a live run folded into its figures
	err      error

	pollParser, readParser fastjson.Parser
}

func newFollower(c *conn, p *plan, t0 time.Time, poll time.Duration) *follower {
	f := &follower{c: c, p: p, t0: t0, poll: poll, blockOf: make([]int32, len(p.body)), wake: make(chan struct{}, 1)}
	for i := range f.blockOf {
		f.blockOf[i] = -1
	}
	return f
}

// newLiveFollower follows a live run, whose transactions book knows.
func newLiveFollower(c *conn, book *liveBook, poll time.Duration) *follower {
	return &follower{c: c, live: book, poll: poll, wake: make(chan struct{}, 1)}
}

var headBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"chain.get_head_info","params":{}}`)

// headInfo is what chain.get_head_info says.
type headInfo struct {
	height uint64
	id     koinos.Digest // zero at genesis
	lib    uint64        // last irreversible block
}

// readHead asks c for the head; n, if set, counts the response bytes.
func readHead(c *conn, p *fastjson.Parser, n *int64) (headInfo, error) {
	var hi headInfo
	err := c.call(p, headBody, 30*time.Second, n, func(r *fastjson.Value) error {
		t := r.Get("head_topology")
		if t == nil {
			return fmt.Errorf("bench: chain.get_head_info: no head_topology")
		}
		var err error
		if hi.height, err = uintField(t, "height"); err != nil {
			return fmt.Errorf("bench: chain.get_head_info: %w", err)
		}
		if hi.lib, err = uintField(r, "last_irreversible_block"); err != nil {
			return fmt.Errorf("bench: chain.get_head_info: %w", err)
		}
		if hi.height == 0 {
			return nil // genesis: no block id yet
		}
		hi.id, err = parseHexID(t.GetStringBytes("id"))
		return err
	})
	return hi, err
}

// head returns the head.
func (f *follower) head() (headInfo, error) {
	var n int64
	hi, err := readHead(f.c, &f.pollParser, &n)
	f.bytes.Add(n)
	return hi, err
}

// start records the head before the clock starts: only later blocks can
// hold the run's transactions.
func (f *follower) start() error {
	hi, err := f.head()
	if err != nil {
		return err
	}
	f.lastHeight, f.lastID, f.startHeight = hi.height, hi.id, hi.height
	f.startLIB = hi.lib
	f.mu.headID = hi.id
	f.headHeight.Store(hi.height)
	f.libHeight.Store(hi.lib)
	return nil
}

// run follows the chain until ctx ends; f.err holds the first failure.
func (f *follower) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pollErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		pollErr = f.pollLoop(ctx)
	}()
	f.err = f.readLoop(ctx)
	cancel()
	<-done
	if f.err == nil {
		f.err = pollErr
	}
}

func (f *follower) pollLoop(ctx context.Context) error {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		hi, err := f.head()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		seen := time.Since(f.t0).Nanoseconds()
		f.polls.Add(1)
		f.mu.Lock()
		for ht := f.startHeight + 1 + uint64(len(f.mu.seenAt)); ht <= hi.height; ht++ {
			f.mu.seenAt = append(f.mu.seenAt, seen)
		}
		for ht := f.startLIB + 1 + uint64(len(f.mu.libAt)); ht <= hi.lib; ht++ {
			f.mu.libAt = append(f.mu.libAt, seen)
		}
		if hi.height >= f.headHeight.Load() {
			f.mu.headID = hi.id
			f.headHeight.Store(hi.height)
		}
		if hi.lib > f.libHeight.Load() {
			f.libHeight.Store(hi.lib)
		}
		f.mu.Unlock()
		select {
		case f.wake <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (f *follower) readLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
		}
		if f.deferBodies && !f.catchUp.Load() {
			continue
		}
		if err := f.readNew(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// readNew reads the blocks up to the last polled head.
func (f *follower) readNew() error {
	f.mu.Lock()
	h, headID := f.headHeight.Load(), f.mu.headID
	f.mu.Unlock()
	for h > f.lastHeight {
		n := min(h-f.lastHeight, f.fetchSize())
		items, err := f.fetch(headID, f.lastHeight+1, n)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return nil // the head moved to another fork; the next poll sees it
		}
		if items[0].prev != f.lastID && len(f.blocks) > 0 {
			// A reorganization replaced our last block: forget it and its
			// inclusions, and read again from below it.
			f.reorgs++
			f.unwind()
			continue
		}
		fetched := time.Since(f.t0).Nanoseconds()
		for _, it := range items {
			b := &blockObs{Height: it.height, ID: it.id, TsMs: it.ts, SeenNs: f.seenOf(it.height, fetched), FetchNs: fetched, Txs: len(it.txIDs)}
			idx := int32(len(f.blocks))
			for _, tid := range it.txIDs {
				if f.live != nil {
					if f.live.include(tid, b) {
						b.Bench++
					}
				} else if i, ok := f.p.ids[tid]; ok && f.blockOf[i] < 0 {
					atomic.StoreInt32(&f.blockOf[i], idx)
					b.txs = append(b.txs, i)
					b.Bench++
				}
			}
			f.included.Add(int64(b.Bench))
			f.blocks = append(f.blocks, b)
			f.lastHeight, f.lastID = it.height, it.id
		}
		f.foldIrreversible(false)
	}
	return nil
}

// foldIrreversible hands a live run's blocks to its figures once they are
// irreversible (all of them when all is set: the run is over), so only
// the blocks a reorganization could still replace keep their
// transactions. folded counts the blocks handed on.
func (f *follower) foldIrreversible(all bool) {
	if f.live == nil {
		return
	}
	lib := f.libHeight.Load()
	for ; f.folded < len(f.blocks); f.folded++ {
		b := f.blocks[f.folded]
		if !all && b.Height > lib {
			return
		}
		f.live.fold(b)
	}
}

// seenOf is when height h was first reported by a head poll (now, for a
// height no poll reported: one read past the polled head).
func (f *follower) seenOf(h uint64, now int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := h - f.startHeight - 1; h > f.startHeight && k < uint64(len(f.mu.seenAt)) {
		return f.mu.seenAt[k]
	}
	return now
}

// irreversibleAt is when a head poll first reported height h as
// irreversible (ns since t0), or false when none did.
func (f *follower) irreversibleAt(h uint64) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := h - f.startLIB - 1; h > f.startLIB && k < uint64(len(f.mu.libAt)) {
		return f.mu.libAt[k], true
	}
	return 0, false
}

// fetchSize bounds the blocks read in one call by the size of the last
// one, so a response stays within a few tens of megabytes; the first read
// takes one block, its size unknown.
func (f *follower) fetchSize() uint64 {
	if len(f.blocks) == 0 || f.blocks[len(f.blocks)-1].Txs > 2000 {
		return 1
	}
	return 32
}

func (f *follower) unwind() {
	last := f.blocks[len(f.blocks)-1]
	f.blocks = f.blocks[:len(f.blocks)-1]
	for _, i := range last.txs {
		atomic.StoreInt32(&f.blockOf[i], -1)
	}
	if f.live != nil {
		// Blocks are folded once irreversible, and no reorganization
		// replaces an irreversible block.
		f.live.unwind(last)
		f.folded = min(f.folded, len(f.blocks))
	}
	f.included.Add(-int64(last.Bench))
	if len(f.blocks) > 0 {
		b := f.blocks[len(f.blocks)-1]
		f.lastHeight, f.lastID = b.Height, b.ID
	} else {
		f.lastHeight--
		f.lastID = koinos.Digest{} // unknown: accept whatever comes next
	}
}

type fetchedBlock struct {
	height uint64
	id     koinos.Digest
	prev   koinos.Digest
	ts     int64
	txIDs  []koinos.Digest
}

// fetch reads n blocks from height from on the chain ending at head.
func (f *follower) fetch(head koinos.Digest, from, n uint64) ([]fetchedBlock, error) {
	body := []byte(`{"jsonrpc":"2.0","id":2,"method":"block_store.get_blocks_by_height","params":`)
	body, err := kjson.Append(body, &blockstorerpc.GetBlocksByHeightRequest{
		HeadBlockId: head.Multihash(), AncestorStartHeight: from, NumBlocks: uint32(n), ReturnBlock: true,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	body = append(body, '}')
	var out []fetchedBlock
	err = f.c.post(body, 2*time.Minute, func(status int, resp []byte) error {
		f.bytes.Add(int64(len(resp)))
		if n == 1 && status == 200 {
			if fb, ok := scanOneBlock(resp); ok {
				out = append(out, fb)
				return nil
			}
		}
		return parseResult(&f.readParser, status, resp, func(r *fastjson.Value) error {
			out, err = parseBlockItems(r)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bench: block_store.get_blocks_by_height from %d: %w", from, err)
	}
	return out, nil
}

// parseBlockItems reads block items from a parsed answer.
func parseBlockItems(r *fastjson.Value) ([]fetchedBlock, error) {
	var out []fetchedBlock
	err := func() error {
		for _, it := range r.GetArray("block_items") {
			var fb fetchedBlock
			var err error
			if fb.height, err = uintField(it, "block_height"); err != nil {
				return err
			}
			if fb.id, err = parseHexID(it.GetStringBytes("block_id")); err != nil {
				return err
			}
			b := it.Get("block")
			if b == nil {
				return fmt.Errorf("bench: block %d came without its body", fb.height)
			}
			if fb.prev, err = parseHexID(b.GetStringBytes("header", "previous")); err != nil {
				return err
			}
			ts, err := uintField(b.Get("header"), "timestamp")
			if err != nil {
				return fmt.Errorf("bench: block %d: %w", fb.height, err)
			}
			fb.ts = int64(ts)
			txs := b.GetArray("transactions")
			fb.txIDs = make([]koinos.Digest, len(txs))
			for i, tx := range txs {
				if fb.txIDs[i], err = parseHexID(tx.GetStringBytes("id")); err != nil {
					return err
				}
			}
			out = append(out, fb)
		}
		return nil
	}()
	return out, err
}

// parseHexID decodes a "0x"-hex sha2-256 multihash.
func parseHexID(s []byte) (koinos.Digest, error) {
	var d koinos.Digest
	if len(s) != 2+2*koinos.MultihashSize || s[0] != '0' || s[1] != 'x' {
		return d, fmt.Errorf("bench: %.80q is not a 0x-hex sha2-256 multihash", s)
	}
	var mh [koinos.MultihashSize]byte
	if _, err := hex.Decode(mh[:], s[2:]); err != nil {
		return d, fmt.Errorf("bench: %.80q: %w", s, err)
	}
	return koinos.ParseMultihash(mh[:])
}

// uintField reads a 64-bit integer field, which the Koinos JSON encoding
// writes as a string and omits when it is 0.
func uintField(v *fastjson.Value, key string) (uint64, error) {
	if v == nil {
		return 0, fmt.Errorf("%s: missing object", key)
	}
	f := v.Get(key)
	if f == nil {
		return 0, nil
	}
	s, err := f.StringBytes()
	if err != nil {
		return 0, fmt.Errorf("%s: want a string of digits", key)
	}
	n, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return n, nil
}
