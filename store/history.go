package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Account history (doc.go, "Account history"): one key per (address,
// block) where the block touches the address,
//
//	a ‖ address(25) ‖ first seq(8)  →  uvarint height ‖ uvarint n ‖ n × uvarint entry
//
// where entry 0 is the block itself (the address signed it or is named by
// a block event) and entry i+1 is the block's transaction i. The first
// seq number of the next key is first seq + n, so the last key of an
// address gives its next seq number: that is the counter, kept in memory
// and reloaded with one reverse seek.

// entryBlock is the history entry of the block itself.
const entryBlock = 0

// histAgg gathers one block's history entries by address, with flat
// slices reused from block to block so that attributing a block of
// thousands of transactions allocates nothing once warm.
type histAgg struct {
	slot  map[koinos.Address]int32
	addrs []koinos.Address
	first []int32 // per slot: first node
	last  []int32 // per slot: last node
	count []uint32
	nodes []histNode
	order []int32

	entry   uint32   // the entry being added
	recent  [4]int32 // slots it named so far
	nrecent int      // -1 after reset
	hot     int32    // the slot with the most entries, or -1
}

type histNode struct {
	entry uint32
	next  int32
}

// sorted returns the slots in address order, the order their keys are
// written in (as for the transaction index, nearby memtable inserts are
// cheaper).
func (h *histAgg) sorted() []int32 {
	h.order = h.order[:0]
	for i := range h.addrs {
		h.order = append(h.order, int32(i))
	}
	slices.SortFunc(h.order, func(x, y int32) int {
		// Byte 0 of every address is the version, so compare from byte 1,
		// eight bytes at a time.
		ax, ay := &h.addrs[x], &h.addrs[y]
		if c := cmp.Compare(binary.BigEndian.Uint64(ax[1:]), binary.BigEndian.Uint64(ay[1:])); c != 0 {
			return c
		}
		return bytes.Compare(ax[:], ay[:])
	})
	return h.order
}

func (h *histAgg) reset() {
	if h.slot == nil {
		h.slot = make(map[koinos.Address]int32)
	}
	clear(h.slot)
	h.addrs, h.first, h.last, h.count, h.nodes = h.addrs[:0], h.first[:0], h.last[:0], h.count[:0], h.nodes[:0]
	h.nrecent, h.hot = -1, -1
}

// add records that entry concerns the address in b. Anything but a
// 25-byte address is ignored: history is queried by koinos.Address. An
// address named twice by one entry is recorded once.
//
// Two fast paths spare most map lookups, which dominate attribution: the
// slots already named by this entry (a transfer names its sender and the
// token twice each), and the busiest slot so far (the token contract,
// named by every transfer).
func (h *histAgg) add(b []byte, entry uint32) {
	if len(b) != koinos.AddressSize {
		return
	}
	a := (*koinos.Address)(b)
	if entry != h.entry || h.nrecent < 0 {
		h.entry, h.nrecent = entry, 0
	}
	for _, s := range h.recent[:h.nrecent] {
		if h.addrs[s] == *a {
			return
		}
	}
	var s int32
	var ok bool
	if h.hot >= 0 && h.addrs[h.hot] == *a {
		s, ok = h.hot, true
	} else {
		s, ok = h.slot[*a]
	}
	if !ok {
		s = int32(len(h.addrs))
		h.slot[*a] = s
		h.addrs = append(h.addrs, *a)
		h.first = append(h.first, int32(len(h.nodes)))
		h.last = append(h.last, int32(len(h.nodes)))
		h.count = append(h.count, 1)
		h.nodes = append(h.nodes, histNode{entry: entry, next: -1})
	} else {
		l := h.last[s]
		if h.nodes[l].entry == entry {
			return // named earlier by this entry, beyond the recent slots
		}
		h.nodes[l].next = int32(len(h.nodes))
		h.last[s] = int32(len(h.nodes))
		h.count[s]++
		h.nodes = append(h.nodes, histNode{entry: entry, next: -1})
		if h.hot < 0 || h.count[s] > h.count[h.hot] {
			h.hot = s
		}
	}
	if h.nrecent < len(h.recent) {
		h.recent[h.nrecent] = s
		h.nrecent++
	}
}

// attribute adds every address a block's history names, Koinos's way
// (account_history.cpp): the block to its signer and its receipt's event
// sources and impacted addresses; each transaction to its payer, payee,
// the contract of each operation, and its receipt's event sources and
// impacted addresses.
func (h *histAgg) attribute(b *protocol.Block, r *protocol.BlockReceipt) {
	h.add(b.GetHeader().GetSigner(), entryBlock)
	h.addEvents(r.GetEvents(), entryBlock)
	rcpts := r.GetTransactionReceipts()
	for i, tx := range b.GetTransactions() {
		e := uint32(i + 1)
		h.add(tx.GetHeader().GetPayer(), e)
		h.add(tx.GetHeader().GetPayee(), e)
		for _, op := range tx.GetOperations() {
			h.add(operationContract(op), e)
		}
		if i < len(rcpts) {
			h.addEvents(rcpts[i].GetEvents(), e)
		}
	}
}

func (h *histAgg) addEvents(evs []*protocol.EventData, entry uint32) {
	for _, ev := range evs {
		h.add(ev.GetSource(), entry)
		for _, a := range ev.GetImpacted() {
			h.add(a, entry)
		}
	}
}

// operationContract is the contract an operation names, or nil.
func operationContract(op *protocol.Operation) []byte {
	switch o := op.GetOp().(type) {
	case *protocol.Operation_CallContract:
		return o.CallContract.GetContractId()
	case *protocol.Operation_UploadContract:
		return o.UploadContract.GetContractId()
	case *protocol.Operation_SetSystemContract:
		return o.SetSystemContract.GetContractId()
	case *protocol.Operation_SetSystemCall:
		return o.SetSystemCall.GetTarget().GetSystemCallBundle().GetContractId()
	}
	return nil
}

// matches reports whether entry of a block names addr, by the rules of
// attribute; the query path uses it for blocks not yet indexed.
func matches(addr *koinos.Address, b *protocol.Block, r *protocol.BlockReceipt, entry int) bool {
	is := func(x []byte) bool { return bytes.Equal(x, addr[:]) }
	inEvents := func(evs []*protocol.EventData) bool {
		for _, ev := range evs {
			if is(ev.GetSource()) {
				return true
			}
			for _, a := range ev.GetImpacted() {
				if is(a) {
					return true
				}
			}
		}
		return false
	}
	if entry == entryBlock {
		return is(b.GetHeader().GetSigner()) || inEvents(r.GetEvents())
	}
	i := entry - 1
	tx := b.GetTransactions()[i]
	if is(tx.GetHeader().GetPayer()) || is(tx.GetHeader().GetPayee()) {
		return true
	}
	for _, op := range tx.GetOperations() {
		if is(operationContract(op)) {
			return true
		}
	}
	rcpts := r.GetTransactionReceipts()
	return i < len(rcpts) && inEvents(rcpts[i].GetEvents())
}

// indexHistory writes the account history of blocks that became
// irreversible, oldest first. The indexer calls it, holding s.ix.
func (s *Store) indexHistory(b *pebble.Batch, blocks []*chain.BlockEntry) error {
	if len(blocks) == 0 || s.noHistory {
		return nil
	}
	ix := &s.ix
	ix.counters.evictIfFull()
	var it *pebble.Iterator // opened on the first counter miss
	defer func() {
		if it != nil {
			_ = it.Close()
		}
	}()
	h := &ix.hist
	for _, e := range blocks {
		h.reset()
		h.attribute(e.Block, e.Receipt)
		for _, slot := range h.sorted() {
			a := &h.addrs[slot] // a pointer: a copy would escape through the error paths
			seq, ok := ix.counters.m[*a]
			if !ok {
				if it == nil {
					var err error
					if it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceHistory}, UpperBound: []byte{spaceHistory + 1}}); err != nil {
						return fmt.Errorf("store: account history: %w", err)
					}
				}
				var err error
				if seq, err = loadCounter(it, a); err != nil {
					return err
				}
			}
			n := h.count[slot]
			ix.key = historyKey(ix.key[:0], a, seq)
			v := binary.AppendUvarint(ix.val[:0], e.Height)
			v = binary.AppendUvarint(v, uint64(n))
			for k := h.first[slot]; k >= 0; k = h.nodes[k].next {
				v = binary.AppendUvarint(v, uint64(h.nodes[k].entry))
			}
			ix.val = v
			_ = b.Set(ix.key, v, nil)
			ix.counters.m[*a] = seq + uint64(n)
		}
	}
	return nil
}

// loadCounter returns the next seq number of addr from its last history
// key, or 0 when it has none. it must not see the batch being built.
func loadCounter(it *pebble.Iterator, addr *koinos.Address) (uint64, error) {
	var seek [historyKeyLen + 1]byte
	k := historyKey(seek[:0], addr, math.MaxUint64)
	k = append(k, 0) // just above the largest possible key of addr
	if !it.SeekLT(k) || !bytes.HasPrefix(it.Key(), k[:historyPrefix]) {
		if err := it.Error(); err != nil {
			return 0, fmt.Errorf("store: account history of %s: %w", addr, err)
		}
		return 0, nil
	}
	first, v, err := decodeHistory(it.Key(), it.Value())
	if err != nil {
		return 0, fmt.Errorf("store: account history of %s: %w", addr, err)
	}
	return first + uint64(len(v.entries)), nil
}

// historyValue is one decoded history key.
type historyValue struct {
	height  uint64
	entries []uint32
}

func decodeHistory(key, val []byte) (first uint64, hv historyValue, err error) {
	if len(key) != historyKeyLen {
		return 0, hv, corrupt("history record: key of %d bytes", len(key))
	}
	first = binary.BigEndian.Uint64(key[historyPrefix:])
	var n uint64
	var ok bool
	if hv.height, val, ok = uvarint(val); !ok {
		return 0, hv, corrupt("history record: height")
	}
	if n, val, ok = uvarint(val); !ok || n == 0 || n > uint64(len(val)) || n > math.MaxUint64-first {
		return 0, hv, corrupt("history record: %d entries", n)
	}
	hv.entries = make([]uint32, n)
	for i := range hv.entries {
		var e uint64
		if e, val, ok = uvarint(val); !ok || e > maxRecordTxs {
			return 0, hv, corrupt("history record: entry %d", i)
		}
		hv.entries[i] = uint32(e)
	}
	if len(val) != 0 {
		return 0, hv, corrupt("history record: %d trailing bytes", len(val))
	}
	return first, hv, nil
}

// counterCache holds the next history seq number of recently seen
// addresses. It is only touched by the indexer (under Store.ix).
type counterCache struct {
	m   map[koinos.Address]uint64
	max int
}

func newCounterCache(max int) counterCache {
	return counterCache{m: make(map[koinos.Address]uint64), max: max}
}

// evictIfFull drops a tenth of the counters (in map order, which is
// random) once the cache is full. It runs only between commits: a counter
// moved by the batch being built must stay until the batch is written,
// since reloading it from disk would miss the batch.
func (c *counterCache) evictIfFull() {
	if len(c.m) < c.max {
		return
	}
	drop := len(c.m) - c.max*9/10
	for a := range c.m {
		if drop <= 0 {
			return
		}
		delete(c.m, a)
		drop--
	}
}
