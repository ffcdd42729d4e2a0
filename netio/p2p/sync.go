package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

const (
	maxSyncRequest = 64 << 10
	maxLocator     = 128
	// maxBlocksPerRequest caps a blocks request, as the store caps one
	// read.
	maxBlocksPerRequest = 1000
	// syncLagTime is how far (in block time) behind the best peer the
	// node may be before it counts as syncing, and at least syncLagBlocks:
	// gossip closes smaller gaps, and a head poll can lag the peer's head
	// by a block or two without the node being behind.
	syncLagTime   = 2 * time.Second
	syncLagBlocks = 2
	// verifyAhead is how many blocks are verified at once ahead of apply.
	verifyAhead = 8
	// applyGroup bounds a group handed to the chain loop, in blocks and
	// transactions: one store sync per group.
	applyGroupBlocks = 256
	applyGroupTxs    = 50_000
	// progressEvery is how often sync logs its progress.
	progressEvery = 5 * time.Second
)

// syncStats are the sync figures for metrics.
type syncStats struct {
	target       atomic.Uint64 // height sync is heading for (0: idle)
	blocks, txs  atomic.Uint64 // applied by sync, ever
	bytes        atomic.Uint64 // block bytes received by sync (compressed, as on the wire)
	rounds       atomic.Uint64 // sync rounds started
	rateBlocks   atomic.Uint64 // blocks/s over the last progress period
	rateTxs      atomic.Uint64 // transactions/s over the last progress period
	invalidPeers atomic.Uint64 // invalid blocks served (each costs its peer penaltyInvalidBlock)
	buffered     atomic.Int64  // bytes in the sync buffer (syncbuffer.go) now
	bufferFull   atomic.Uint64 // times a fetcher waited for room in the sync buffer
}

func (s *Service) wakeSync() {
	select {
	case s.syncWake <- struct{}{}:
	default:
	}
}

// syncRequest sends a sync request and decodes the response, with a
// deadline sized to maxBytes. A fork point response is small; a blocks
// response holds about maxBytes of blocks, but always its first block,
// which may be the largest the chain allows.
func (s *Service) syncRequest(ctx context.Context, p peer.ID, req *p2ppb.SyncRequest, maxBytes int) (*p2ppb.SyncResponse, int, error) {
	rb, _ := req.MarshalVT()
	limit := maxSyncRequest
	if req.GetBlocks() != nil {
		limit += max(2*maxBytes, s.maxBlockResponse())
	}
	raw, err := s.request(ctx, p, protoSync, rb, limit, reqDeadline(maxBytes))
	if err != nil {
		return nil, 0, err
	}
	body, err := unpackBody(raw, limit)
	if err != nil {
		return nil, len(raw), fmt.Errorf("%w: %w", errBadResponse, err)
	}
	var resp p2ppb.SyncResponse
	if err := resp.UnmarshalVT(body); err != nil || resp.Response == nil {
		return nil, len(raw), fmt.Errorf("%w: undecodable sync response", errBadResponse)
	}
	return &resp, len(raw), nil
}

// syncLoop catches up with the peers: whenever a peer's head is higher
// than this node's, it downloads the blocks in between from the peers
// that have them and applies them in groups.
func (s *Service) syncLoop(ctx context.Context) {
	t := time.NewTicker(statusInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.syncWake:
		}
		for ctx.Err() == nil {
			target, st, ok := s.pickTarget()
			if !ok {
				break
			}
			applied, err := s.syncTo(ctx, target, st)
			if err != nil && ctx.Err() == nil {
				s.log.Info("sync round ended", "peer", target.String(), "applied", applied, "err", err)
				if applied == 0 && !errors.Is(err, errNotServed) {
					s.unserved(target)
				}
			}
			if applied > 0 {
				s.peers.served(target)
			}
			if applied == 0 {
				break
			}
		}
		s.updateSyncing()
		s.syncStat.target.Store(0)
		s.syncStat.rateBlocks.Store(0)
		s.syncStat.rateTxs.Store(0)
	}
}

// pickTarget returns the peer whose chain is best to sync from: among
// those worth syncing from (worthSyncing), the one fork choice would rank
// first by what its status tells: the highest last irreversible block,
// then the highest head, then the latest status.
func (s *Service) pickTarget() (peer.ID, peerStatus, bool) {
	s.updateSyncing()
	v := s.node.View()
	var best peer.ID
	var bst peerStatus
	now := s.cfg.Now()
	for p, st := range s.peers.snapshot() {
		if st.avoidUntil.After(now) || !s.worthSyncing(st.head, st.lib, v) {
			continue
		}
		if best == "" || rankAbove(st, bst) {
			best, bst = p, st
		}
	}
	return best, bst, best != ""
}

// rankAbove orders sync targets as fork choice orders branches, as far as
// a status tells: irreversibility, then height; then the fresher status.
func rankAbove(a, b peerStatus) bool {
	if a.lib.height != b.lib.height {
		return a.lib.height > b.lib.height
	}
	if a.head.height != b.head.height {
		return a.head.height > b.head.height
	}
	return a.at.After(b.at)
}

// worthSyncing reports whether a peer's chain, by its head and last
// irreversible block, may win fork choice here and this node lacks its
// head: a higher head, or a higher last irreversible block at any height.
// Fork choice ranks irreversibility first (chain's forkdb.better), and a
// branch that wins by it need never be ahead in height: after a 2–2 split
// heals, the side whose branch made more irreversible may be the side
// whose producers' slots come second in the rotation, level with the
// other at most or behind it. Syncing only from higher heads left such a
// cluster on two branches for good (TestPartitionAndHeal under CI load;
// TestIrreversibleBranchAtEqualHeightIsSynced).
func (s *Service) worthSyncing(head, lib blockRef, v *chain.View) bool {
	if head.height <= v.Head.Height && lib.height <= v.LIB.Height {
		return false
	}
	return !s.node.HasBlock(head.id)
}

// unserved leaves a sync target that gave nothing toward the head it
// claimed out of sync, and out of the "behind" decision, for
// unservedBackoff, doubled with each such round in a row. A peer that
// claims a head far above the network's and never serves it would
// otherwise keep every node "syncing", and so not producing, for as long
// as it stays connected: CometBFT's blocksync stalled on a peer that
// claimed a height and then lowered it (OPERATIONS.md §2).
func (s *Service) unserved(p peer.ID) {
	n := s.peers.unservedRound(p)
	if n == 0 {
		return // gone
	}
	d := min(unservedBackoff<<min(n-1, 8), conflictBackoff)
	s.peers.avoid(p, s.cfg.Now().Add(d))
	s.log.Info("a peer did not serve the head it claimed; sync leaves it out for a while", "peer", p.String(), "rounds", n, "for", d)
}

// servesSync reports whether a peer offers the sync protocol, as far as
// its identify exchange told (true when it has not told yet).
func (s *Service) servesSync(p peer.ID) bool {
	protos, err := s.host.Peerstore().GetProtocols(p)
	if err != nil || len(protos) == 0 {
		return true
	}
	return slices.Contains(protos, protoSync)
}

// syncLag is how many blocks behind the best peer the node may be before
// it counts as syncing.
func (s *Service) syncLag() uint64 {
	if s.cfg.BlockInterval <= 0 {
		return syncLagBlocks
	}
	return max(syncLagBlocks, uint64((syncLagTime+s.cfg.BlockInterval-1)/s.cfg.BlockInterval))
}

// updateSyncing sets the syncing flag from the peers' heads: more than
// syncLag blocks behind the best of them.
func (s *Service) updateSyncing() {
	head := s.node.View().Head.Height
	lag := s.syncLag()
	behind := false
	now := s.cfg.Now()
	for _, st := range s.peers.snapshot() {
		if st.avoidUntil.After(now) {
			continue // its head could not be had lately
		}
		if st.head.height > head+lag {
			behind = true
			break
		}
	}
	if s.syncing.Swap(behind) != behind {
		if behind {
			s.log.Info("behind the network: syncing; transaction gossip and production pause", "head", head)
		} else {
			s.log.Info("caught up with the network", "head", head)
		}
	}
}

// locator lists this node's head chain for a fork point request: the head,
// then heights back at doubling steps, then the last irreversible block.
func (s *Service) locator() ([]*p2ppb.BlockRef, error) {
	v := s.node.View()
	var refs []*p2ppb.BlockRef
	step := uint64(1)
	for h := v.Head.Height; h > v.LIB.Height && len(refs) < maxLocator-1; {
		id, ok, err := s.node.BlockIDAt(v.Head.ID, h)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		refs = append(refs, &p2ppb.BlockRef{Id: id.Multihash(), Height: h})
		if len(refs) > 4 {
			step *= 2
		}
		if h < v.LIB.Height+step {
			break
		}
		h -= step
	}
	return append(refs, refOf(v.LIB)), nil
}

// syncTo runs one sync round toward a peer's head: find where the chains
// part, then fetch, verify and apply the blocks above. It returns how many
// blocks were applied.
func (s *Service) syncTo(ctx context.Context, target peer.ID, st peerStatus) (int, error) {
	loc, err := s.locator()
	if err != nil {
		return 0, err
	}
	resp, _, err := s.syncRequest(ctx, target, &p2ppb.SyncRequest{Request: &p2ppb.SyncRequest_ForkPoint{ForkPoint: &p2ppb.ForkPointRequest{Locator: loc}}}, maxSyncRequest)
	if err != nil {
		if !s.servesSync(target) {
			s.penalize(target, penaltyLie, "claims a head above this node's but does not serve sync", "height", st.head.height)
			return 0, err
		}
		s.requestFailed(target, err)
		return 0, err
	}
	fp := resp.GetForkPoint()
	if fp == nil {
		if resp.GetError() == errNotServed.Error() {
			return 0, errNotServed // busy serving others: no fault of its claim
		}
		return 0, fmt.Errorf("p2p: fork point not served: %s", resp.GetError())
	}
	common, err1 := parseRef(fp.Common)
	head, err2 := parseRef(fp.Head)
	if fp.Common == nil {
		// Not even this node's last irreversible block is on the peer's
		// chain. Irreversibility here is each node's count of the
		// producers that built on a block, not a vote, so under long
		// delays two honest nodes can finalize blocks of different
		// branches; banning would then cut the odd node off for good. The
		// peer is left out of sync for a while instead, and the conflict
		// is reported for the operator.
		s.conflicts.Add(1)
		s.peers.avoid(target, s.cfg.Now().Add(conflictBackoff))
		s.log.Error("a peer's chain does not contain this node's last irreversible block: the two finalized different branches; if most peers disagree with this node, resync it from them (docs/network.md)",
			"peer", target.String(), "lib", loc[len(loc)-1].Height, "peer_head", fp.GetHead().GetHeight())
		return 0, errors.New("p2p: the peer's chain does not contain this node's last irreversible block")
	}
	if err := errors.Join(err1, err2); err != nil || common.height > head.height || !inLocator(loc, common) {
		s.penalize(target, penaltyBadResponse, "malformed fork point response", "err", err)
		return 0, fmt.Errorf("%w: fork point", errBadResponse)
	}
	if !s.worthSyncing(head, st.lib, s.node.View()) {
		return 0, nil // it moved, or its status was stale
	}
	s.syncStat.rounds.Add(1)
	s.syncStat.target.Store(head.height)
	r := &syncRound{s: s, target: target, head: head, next: common.height + 1, end: head.height}
	return r.run(ctx)
}

// inLocator reports whether a fork point is one of the locator's entries
// (height 0 always is: every chain starts from the genesis state).
func inLocator(loc []*p2ppb.BlockRef, r blockRef) bool {
	if r.height == 0 {
		return true
	}
	for _, l := range loc {
		if l.Height == r.height && bytes.Equal(l.Id, r.id.Multihash()) {
			return true
		}
	}
	return false
}

// syncRound downloads [next, end] on the chain ending at head from every
// peer that has it, verifies ahead and applies in order.
type syncRound struct {
	s      *Service
	target peer.ID
	head   blockRef
	next   uint64 // next height to hand out
	end    uint64

	mu      sync.Mutex
	retry   []window          // windows handed back, handed out first
	arrived map[uint64]*batch // fetched batches by first height
	// buffered is what the sync buffer holds (syncbuffer.go): responses
	// in flight at their full budget, arrived batches, and the batch being
	// handed to verification; peak is its highest in the round.
	buffered, peak int
	// wanted is the next height the round takes in order: its window may
	// be fetched whatever the buffer holds.
	wanted uint64
	// loggedFull: the buffer's first wait in the round was logged.
	loggedFull bool
	// room is poked when the buffer shrinks or a window is handed back,
	// so fetchers waiting for room look again.
	room chan struct{}
	wake chan struct{} // something arrived or a worker ended
}

type window struct {
	from  uint64
	count int
}

type batch struct {
	blocks []*protocol.Block
	peer   peer.ID
	bytes  int
}

// sources are the peers that may hold the round's head: the target and
// every peer whose head is at least as high.
func (r *syncRound) sources() []peer.ID {
	out := []peer.ID{r.target}
	for p, st := range r.s.peers.snapshot() {
		if p != r.target && st.head.height >= r.end {
			out = append(out, p)
		}
	}
	return out[:min(len(out), r.s.cfg.SyncPeers)]
}

func (r *syncRound) run(ctx context.Context) (int, error) {
	s := r.s
	// The first height to apply, read before the fetchers start: they
	// advance r.next as they take windows.
	nextHeight := r.next
	r.wanted = nextHeight
	defer r.s.syncStat.buffered.Store(0)
	r.arrived = map[uint64]*batch{}
	r.wake = make(chan struct{}, 1)
	r.room = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var workers sync.WaitGroup
	srcs := r.sources()
	active := atomic.Int32{}
	for _, p := range srcs {
		workers.Add(1)
		active.Add(1)
		go func() {
			defer workers.Done()
			defer func() { active.Add(-1); r.poke() }()
			r.fetchFrom(ctx, p)
		}()
	}
	defer workers.Wait()

	// Verify ahead: blocks are verified as soon as they are in order, up
	// to verifyAhead at once; the applier takes them in order and hands
	// the chain loop groups.
	type verified struct {
		vb   *sigverify.VerifiedBlock
		err  error
		peer peer.ID
		done chan struct{}
	}
	queue := make(chan *verified, verifyAhead)
	applied := 0
	applyDone := make(chan error, 1)
	go func() {
		var group []*sigverify.VerifiedBlock
		var groupPeers []peer.ID // the peer of each block of the group
		txs := 0
		flush := func() error {
			if len(group) == 0 {
				return nil
			}
			got, err := s.node.ApplyBlocks(ctx, group, events.Sync, groupPeers[0].String())
			for _, e := range got {
				s.syncStat.blocks.Add(1)
				s.syncStat.txs.Add(uint64(len(e.Block.Transactions)))
			}
			applied += len(got)
			if err != nil {
				bad := groupPeers[0]
				if verdictOf(err) == blockInvalid {
					s.syncStat.invalidPeers.Add(1)
					s.penalize(bad, penaltyInvalidBlock, "served an invalid block", "err", err)
				}
				return err
			}
			group, groupPeers, txs = group[:0], groupPeers[:0], 0
			return nil
		}
		for v := range queue {
			<-v.done
			if v.err != nil {
				if err := flush(); err != nil {
					applyDone <- err
					return
				}
				if verdictOf(v.err) == blockInvalid {
					s.syncStat.invalidPeers.Add(1)
					s.penalize(v.peer, penaltyInvalidBlock, "served a block that does not verify", "err", v.err)
				}
				applyDone <- v.err
				return
			}
			// A group holds one peer's blocks, so a failure is blamed on
			// the peer that served it.
			if len(groupPeers) > 0 && groupPeers[0] != v.peer {
				if err := flush(); err != nil {
					applyDone <- err
					return
				}
			}
			group = append(group, v.vb)
			groupPeers = append(groupPeers, v.peer)
			txs += len(v.vb.Txs)
			if len(group) >= applyGroupBlocks || txs >= applyGroupTxs || len(queue) == 0 {
				if err := flush(); err != nil {
					applyDone <- err
					return
				}
			}
		}
		applyDone <- flush()
	}()

	progress := newProgress(s, r.end)
	var lastID koinos.Digest
	var lastIDSet bool
	var roundErr error
loop:
	for nextHeight <= r.end {
		r.mu.Lock()
		b := r.arrived[nextHeight]
		if b != nil {
			// Its bytes stay in the buffer until its blocks are all in
			// verification's queue.
			delete(r.arrived, nextHeight)
		}
		r.mu.Unlock()
		if b == nil {
			if active.Load() == 0 {
				roundErr = errors.New("p2p: no peer could serve the blocks")
				break
			}
			select {
			case <-ctx.Done():
				roundErr = ctx.Err()
				break loop
			case <-r.wake:
			case err := <-applyDone:
				roundErr = err
				applyDone <- err
				break loop
			}
			continue
		}
		// The batch must continue the chain assembled so far.
		prev, _ := digestOf(b.blocks[0].Header.Previous)
		if lastIDSet && prev != lastID {
			s.penalize(b.peer, penaltyBadResponse, "served blocks that do not link to the chain", "height", nextHeight)
			r.release(b.bytes)
			r.giveBack(window{from: nextHeight, count: len(b.blocks)})
			continue
		}
		for _, blk := range b.blocks {
			v := &verified{peer: b.peer, done: make(chan struct{})}
			select {
			case queue <- v:
			case <-ctx.Done():
				roundErr = ctx.Err()
				break loop
			case err := <-applyDone:
				roundErr = err
				applyDone <- err
				break loop
			}
			go func() {
				defer close(v.done)
				v.vb, v.err = s.node.VerifyBlock(ctx, blk)
			}()
		}
		last := b.blocks[len(b.blocks)-1]
		lastID, lastIDSet = koinos.BlockID(last.Header), true
		nextHeight += uint64(len(b.blocks))
		r.mu.Lock()
		r.wanted = nextHeight
		r.mu.Unlock()
		r.release(b.bytes)
		progress.tick(nextHeight - 1)
	}
	close(queue)
	err := <-applyDone
	if roundErr == nil {
		roundErr = err
	}
	cancel()
	progress.done(applied)
	return applied, roundErr
}

// fetchFrom fetches windows from one peer until none is left, the peer
// fails, or the round ends.
func (r *syncRound) fetchFrom(ctx context.Context, p peer.ID) {
	s := r.s
	count := 64 // blocks per request, adapted to the blocks' size
	for ctx.Err() == nil {
		w, ok := r.takeWindow(ctx, count)
		if !ok {
			return
		}
		// The window's reservation becomes the response's size, or is
		// released if none comes.
		arrived := 0
		reserved := true
		settle := func() {
			if reserved {
				r.settle(arrived)
				reserved = false
			}
		}
		req := &p2ppb.SyncRequest{Request: &p2ppb.SyncRequest_Blocks{Blocks: &p2ppb.BlocksRequest{
			HeadId: r.head.id.Multihash(), FromHeight: w.from, Count: uint32(w.count), MaxBytes: uint32(s.cfg.SyncBatchBytes),
		}}}
		resp, wire, err := s.syncRequest(ctx, p, req, s.cfg.SyncBatchBytes)
		if err != nil {
			settle()
			r.giveBack(w)
			if ctx.Err() == nil {
				s.requestFailed(p, err)
			}
			return
		}
		s.syncStat.bytes.Add(uint64(wire))
		blocks := resp.GetBlocks().GetBlocks()
		if msg := resp.GetError(); msg != "" || resp.GetBlocks() == nil {
			settle()
			r.giveBack(w)
			if p == r.target && msg == errUnknownHead {
				s.penalize(p, penaltyLie, "cannot serve the head it announced", "height", r.head.height)
			}
			return
		}
		if err := checkBatch(blocks, w); err != nil {
			settle()
			r.giveBack(w)
			s.penalize(p, penaltyBadResponse, "bad blocks response", "err", err)
			return
		}
		// Aim the next request at about the byte budget.
		size := 0
		for _, b := range blocks {
			size += b.SizeVT()
		}
		per := max(size/len(blocks), 1)
		count = max(1, min(maxBlocksPerRequest, s.cfg.SyncBatchBytes/per))
		r.mu.Lock()
		r.arrived[w.from] = &batch{blocks: blocks, peer: p, bytes: size}
		r.mu.Unlock()
		arrived = size
		settle()
		if len(blocks) < w.count {
			r.giveBack(window{from: w.from + uint64(len(blocks)), count: w.count - len(blocks)})
		}
		r.poke()
	}
}

// checkBatch checks a blocks response has the form asked for: at least one
// block, consecutive heights from the window's start, each linked to the
// one before; the block ids are derived from the headers.
func checkBatch(blocks []*protocol.Block, w window) error {
	if len(blocks) == 0 || len(blocks) > w.count {
		return fmt.Errorf("%d blocks for a request of %d", len(blocks), w.count)
	}
	var prev koinos.Digest
	for i, b := range blocks {
		if b == nil || b.Header == nil {
			return fmt.Errorf("block %d has no header", i)
		}
		if b.Header.Height != w.from+uint64(i) {
			return fmt.Errorf("block %d is at height %d, want %d", i, b.Header.Height, w.from+uint64(i))
		}
		id := koinos.BlockID(b.Header)
		if i > 0 {
			if p, _ := digestOf(b.Header.Previous); p != prev {
				return fmt.Errorf("block at height %d does not link to the one before", b.Header.Height)
			}
		}
		b.Id = id.Multihash()
		prev = id
	}
	return nil
}

// requestFailed scores a peer for a failed request: a timeout or a
// malformed response is its fault, a refused one (busy) is not.
func (s *Service) requestFailed(p peer.ID, err error) {
	switch {
	case errors.Is(err, errTimeout):
		s.penalize(p, penaltyTimeout, "sync request timed out")
	case errors.Is(err, errBadResponse), errors.Is(err, errFrameTooLarge):
		s.penalize(p, penaltyBadResponse, "bad sync response", "err", err)
	default:
		s.log.Debug("sync request failed", "peer", p.String(), "err", err)
	}
}

// progress logs a round's progress with rates and an ETA.
type progress struct {
	s                  *Service
	end                uint64
	start, last        time.Time
	lastBlocks, lastTx uint64
	startBlocks        uint64
	logged             bool
}

func newProgress(s *Service, end uint64) *progress {
	now := s.cfg.Now()
	b := s.syncStat.blocks.Load()
	return &progress{s: s, end: end, start: now, last: now, lastBlocks: b, startBlocks: b, lastTx: s.syncStat.txs.Load()}
}

func (p *progress) tick(height uint64) {
	now := p.s.cfg.Now()
	el := now.Sub(p.last)
	if el < progressEvery {
		return
	}
	b, t := p.s.syncStat.blocks.Load(), p.s.syncStat.txs.Load()
	bps := float64(b-p.lastBlocks) / el.Seconds()
	tps := float64(t-p.lastTx) / el.Seconds()
	p.s.syncStat.rateBlocks.Store(uint64(bps))
	p.s.syncStat.rateTxs.Store(uint64(tps))
	head := p.s.node.View().Head.Height
	attrs := []any{"height", head, "target", p.end, "blocks_per_s", int(bps), "tx_per_s", int(tps)}
	if bps > 0 && p.end > head {
		attrs = append(attrs, "eta", (time.Duration(float64(p.end-head)/bps) * time.Second).Round(time.Second))
	}
	p.s.log.Info("sync progress", attrs...)
	p.last, p.lastBlocks, p.lastTx, p.logged = now, b, t, true
}

func (p *progress) done(applied int) {
	if applied == 0 {
		return
	}
	el := p.s.cfg.Now().Sub(p.start)
	if p.logged || applied >= 100 {
		p.s.log.Info("sync round done", "applied", applied, "height", p.s.node.View().Head.Height, "took", el.Round(time.Millisecond),
			"blocks_per_s", int(float64(applied)/max(el.Seconds(), 1e-3)))
	}
}
