package chain

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/state"
	"github.com/emberchain/ember/engine/vm"
	emberpb "github.com/emberchain/ember/proto/ember"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Defaults of Config.
const (
	DefaultCheckpointInterval = 64
	DefaultMaxForkBlocks      = 4096
	DefaultMaxReadCompute     = 100_000_000
)

// Config configures a Chain.
type Config struct {
	Genesis *genesis.Genesis
	Storage Storage
	Log     *slog.Logger // nil: discard
	// CheckpointInterval is how many irreversible blocks may pass between
	// state checkpoints (default 64). Larger means fewer state writes and a
	// longer replay after a crash.
	CheckpointInterval uint64
	// MaxForkBlocks bounds the blocks held above the last irreversible one
	// (default 4096); blocks beyond it are refused.
	MaxForkBlocks int
	// MaxCachedAccounts bounds the clean account records kept in memory
	// (default state.DefaultMaxCached).
	MaxCachedAccounts int
	// VM bounds the contracts' memory, call depth and compiled-module cache.
	VM vm.Config
	// MaxReadCompute bounds one read_contract call of an uploaded contract
	// (default DefaultMaxReadCompute). Reads are not part of consensus.
	MaxReadCompute uint64
	// Now, when set, times the replay after a restart so its progress log
	// shows a rate and an ETA; the engine reads no clock otherwise.
	Now func() time.Time
}

// Chain is the consensus state machine: the fork database, fork choice,
// irreversibility and the application of blocks and transactions. It does
// no I/O but reads through Storage; one goroutine drives it (AcceptBlock,
// Build, Commit, Advance) while any goroutine may read a View.
type Chain struct {
	g          *genesis.Genesis
	params     *emberpb.ChainParameters
	chainID    koinos.Digest
	producers  []koinos.Address
	token      *contracts.Token
	tokenID    []byte
	limits     sigverify.Limits
	base       *state.Base
	store      Storage
	log        *slog.Logger
	ckInterval uint64
	maxFork    int
	now        func() time.Time

	fork *forkDB
	// settled remembers the ids of the latest irreversible blocks, so a
	// block sync or gossip delivers again is known, not an error.
	settled    recentIDs
	checkpoint Topology
	// unadvanced counts the Readies returned and not yet advanced; a step
	// is refused while any is (AcceptBlocks returns several at once).
	unadvanced int

	view viewPointer

	// vm runs uploaded contracts; contracts is every contract id uploaded
	// on any branch (contractSet).
	vm             *vm.VM
	contracts      contractSet
	maxReadCompute uint64
}

// Open loads the chain from storage, replaying the blocks since the last
// state checkpoint, or starts it from genesis on an empty store. The
// returned Ready must be committed and advanced like any other.
func Open(cfg Config) (*Chain, *Ready, error) {
	g := cfg.Genesis
	if g == nil || cfg.Storage == nil {
		return nil, nil, errors.New("chain: Config needs Genesis and Storage")
	}
	p := g.Params()
	token, err := contracts.NewToken(p)
	if err != nil {
		return nil, nil, err
	}
	c := &Chain{
		g: g, params: p, chainID: g.ChainID(), producers: g.Producers(),
		token: token, tokenID: token.ID().Bytes(), store: cfg.Storage, log: cfg.Log,
		ckInterval: cfg.CheckpointInterval, maxFork: cfg.MaxForkBlocks, now: cfg.Now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ckInterval == 0 {
		c.ckInterval = DefaultCheckpointInterval
	}
	if c.maxFork <= 0 {
		c.maxFork = DefaultMaxForkBlocks
	}
	c.maxReadCompute = cfg.MaxReadCompute
	if c.maxReadCompute == 0 {
		c.maxReadCompute = DefaultMaxReadCompute
	}
	if c.vm, err = vm.New(cfg.VM); err != nil {
		return nil, nil, fmt.Errorf("chain: %w", err)
	}
	c.limits = sigverify.Limits{
		ChainID:             c.chainID.Multihash(),
		MaxTransactionBytes: int(p.Limits.MaxTransactionBytes),
		MaxOperations:       int(p.Limits.MaxOperationsPerTransaction),
		MaxSignatures:       int(p.Limits.MaxSignaturesPerTransaction),
	}
	meta, found, err := c.store.LoadMeta()
	if err != nil {
		return nil, nil, fmt.Errorf("chain: load metadata: %w", err)
	}
	if !found {
		return c, c.initGenesis(cfg.MaxCachedAccounts), nil
	}
	if meta.ChainID != c.chainID {
		return nil, nil, fmt.Errorf("chain: the store holds chain 0x%x, but the genesis file is for chain 0x%x", meta.ChainID.Multihash(), c.chainID.Multihash())
	}
	if err := c.restore(meta, cfg.MaxCachedAccounts); err != nil {
		return nil, nil, err
	}
	r := &Ready{Meta: c.meta()}
	r.view = c.newView()
	c.unadvanced = 1
	return c, r, nil
}

func (c *Chain) genesisRoot() *node {
	_, root := c.g.State()
	return &node{topo: Topology{}, stateRoot: root, timestamp: c.params.GenesisTimeMs}
}

func (c *Chain) initGenesis(maxCached int) *Ready {
	c.base = state.NewBase(c.store, 0, maxCached)
	for _, b := range c.g.Balances() {
		a, _ := koinos.ParseAddress(b.Address)
		c.base.Set(a, state.Account{Balance: b.Amount, Mana: b.Amount, ManaUpdatedMs: c.params.GenesisTimeMs})
	}
	c.base.SetSupply(c.g.TotalSupply())
	c.fork = newForkDB(c.genesisRoot(), len(c.producers))
	r := &Ready{HeadChanged: true, Checkpoint: &Checkpoint{Writes: c.base.TakeDirty()}}
	r.Meta = c.meta()
	r.view = c.newView()
	c.unadvanced = 1
	return r
}

// restore rebuilds memory from the store: base state at the checkpoint,
// the irreversible blocks since it replayed and merged, then the blocks
// above the last irreversible one replayed into the fork database.
func (c *Chain) restore(meta Meta, maxCached int) error {
	var supply uint64
	v, found, err := c.store.GetState(state.SupplyKey())
	if err != nil {
		return fmt.Errorf("chain: read token supply: %w", err)
	}
	if found {
		if supply, err = state.DecodeSupply(v); err != nil {
			return err
		}
	}
	c.base = state.NewBase(c.store, supply, maxCached)
	c.checkpoint = meta.Checkpoint
	if err := c.loadContractIDs(); err != nil {
		return err
	}
	root := c.genesisRoot()
	if meta.Checkpoint.Height > 0 {
		root = nil
		err := c.store.CanonicalBlocks(meta.Checkpoint.Height, meta.Checkpoint.Height, func(e *BlockEntry) error {
			root, err = c.rootFromEntry(e)
			return err
		})
		if err != nil {
			return fmt.Errorf("chain: load checkpoint block %d: %w", meta.Checkpoint.Height, err)
		}
		if root == nil || root.topo.ID != meta.Checkpoint.ID {
			return fmt.Errorf("chain: the store lacks checkpoint block %d (0x%x)", meta.Checkpoint.Height, meta.Checkpoint.ID.Multihash())
		}
	}
	c.fork = newForkDB(root, len(c.producers))
	replayed := 0
	progress := c.progress(meta.LIB.Height - meta.Checkpoint.Height)
	err = c.store.CanonicalBlocks(meta.Checkpoint.Height+1, meta.LIB.Height, func(e *BlockEntry) error {
		n, err := c.replay(e)
		if err != nil {
			return err
		}
		c.fork.advanceRoot(n, c.base)
		replayed++
		progress(uint64(replayed), e.Height)
		return nil
	})
	if err != nil {
		return fmt.Errorf("chain: replay irreversible blocks: %w", err)
	}
	if c.fork.root.topo != meta.LIB {
		return fmt.Errorf("chain: replay ended at block %d (0x%x), but the last irreversible block is %d (0x%x)",
			c.fork.root.topo.Height, c.fork.root.topo.ID.Multihash(), meta.LIB.Height, meta.LIB.ID.Multihash())
	}
	err = c.store.ForkBlocks(meta.LIB.Height, func(e *BlockEntry) error {
		if c.fork.get(e.ID) != nil {
			return nil
		}
		if c.fork.get(e.Previous) == nil {
			c.log.Warn("dropping stored block whose parent is gone", "height", e.Height, "id", fmt.Sprintf("0x%x", e.ID.Multihash()))
			return nil
		}
		_, err := c.replay(e)
		replayed++
		return err
	})
	if err != nil {
		return fmt.Errorf("chain: replay blocks above the last irreversible one: %w", err)
	}
	c.fork.head = c.fork.chooseHead()
	if c.fork.head.topo != meta.Head {
		c.log.Warn("head after replay differs from the stored head", "stored", meta.Head.Height, "now", c.fork.head.topo.Height)
	}
	c.log.Info("chain restored", "head", c.fork.head.topo.Height, "lib", meta.LIB.Height, "checkpoint", meta.Checkpoint.Height, "replayed_blocks", replayed)
	return nil
}

// progress returns a function logging replay progress every 1,000 blocks
// (and every 10 s when a clock is set), with a rate and an ETA.
func (c *Chain) progress(total uint64) func(done, height uint64) {
	if total < 1000 {
		return func(uint64, uint64) {}
	}
	var start, last time.Time
	if c.now != nil {
		start = c.now()
		last = start
	}
	c.log.Info("replaying blocks since the last state checkpoint", "blocks", total)
	return func(done, height uint64) {
		var now time.Time
		if c.now != nil {
			now = c.now()
		}
		if done%1000 != 0 && (c.now == nil || now.Sub(last) < 10*time.Second) && done != total {
			return
		}
		attrs := []any{"height", height, "done", done, "total", total}
		if c.now != nil {
			last = now
			if el := now.Sub(start).Seconds(); el > 0 {
				rate := float64(done) / el
				attrs = append(attrs, "blocks_per_s", int(rate), "eta", (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second))
			}
		}
		c.log.Info("replay progress", attrs...)
	}
}

func (c *Chain) rootFromEntry(e *BlockEntry) (*node, error) {
	sr, err := koinos.ParseMultihash(e.Receipt.GetStateMerkleRoot())
	if err != nil {
		return nil, fmt.Errorf("chain: stored receipt of block %d: %w", e.Height, err)
	}
	signer, _ := koinos.ParseAddress(e.Block.GetHeader().GetSigner())
	return &node{entry: e, topo: e.Topology, stateRoot: sr, timestamp: e.Block.GetHeader().GetTimestamp(), signer: signer}, nil
}

// replay re-applies a stored block and checks it reproduces its receipt.
func (c *Chain) replay(e *BlockEntry) (*node, error) {
	vb, err := sigverify.RestoreBlock(e.Block, e.Signers, &c.limits)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", e.Height, err)
	}
	n, err := c.applyBlock(vb, math.MaxUint64)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", e.Height, err)
	}
	if !bytes.Equal(n.entry.Receipt.StateMerkleRoot, e.Receipt.GetStateMerkleRoot()) {
		return nil, fmt.Errorf("block %d replays to state root %x, but its stored receipt says %x: the store is corrupt or the node's rules changed",
			e.Height, n.entry.Receipt.StateMerkleRoot, e.Receipt.GetStateMerkleRoot())
	}
	// Keep the stored block and receipt (what readers were served), in an
	// entry of our own: the storage's entry is not ours to modify.
	n.entry = &BlockEntry{Topology: e.Topology, Block: e.Block, Receipt: e.Receipt, Txs: vb.Txs, Signers: e.Signers}
	c.fork.insert(n)
	return n, nil
}

// Limits are the stateless transaction limits of this chain, for
// sigverify.
func (c *Chain) Limits() *sigverify.Limits { return &c.limits }

// Genesis returns the chain's genesis.
func (c *Chain) Genesis() *genesis.Genesis { return c.g }

// Token returns the native token contract.
func (c *Chain) Token() *contracts.Token { return c.token }

// MaxBlockTransactions is the block limit from genesis.
func (c *Chain) MaxBlockTransactions() int { return int(c.params.Limits.MaxBlockTransactions) }

// checkHeader runs the header rules that need the parent: height,
// timestamp, slot and producer, previous state root.
func (c *Chain) checkHeader(h *protocol.BlockHeader, signer koinos.Address, parent *node, nowMs uint64) error {
	if h.Height != parent.topo.Height+1 {
		return failure(chainpb.ErrorCode_unexpected_height, "block height %d does not follow its parent's height %d", h.Height, parent.topo.Height)
	}
	if h.Timestamp <= parent.timestamp || h.Timestamp < c.params.GenesisTimeMs+c.params.BlockIntervalMs {
		return failure(chainpb.ErrorCode_timestamp_out_of_bounds, "block timestamp %d is not after its parent's %d", h.Timestamp, parent.timestamp)
	}
	if nowMs != math.MaxUint64 && h.Timestamp > satAdd(nowMs, c.params.Limits.MaxClockDriftMs) {
		return fmt.Errorf("%w: %w", ErrFutureBlock, failure(chainpb.ErrorCode_timestamp_out_of_bounds, "block timestamp %d is more than %d ms ahead of this node's clock (%d)", h.Timestamp, c.params.Limits.MaxClockDriftMs, nowMs))
	}
	// One block per slot: genesis owns slot 0, so block 1 is in slot 1 or
	// later.
	slot := c.slot(h.Timestamp)
	if slot <= c.slot(parent.timestamp) {
		return failure(chainpb.ErrorCode_timestamp_out_of_bounds, "block is in slot %d, not after its parent's slot %d", slot, c.slot(parent.timestamp))
	}
	if want := c.ScheduledProducer(slot); signer != want {
		return failure(chainpb.ErrorCode_authorization_failure, "slot %d belongs to producer %s, but the block is signed by %s", slot, want, signer)
	}
	if !bytes.Equal(h.PreviousStateMerkleRoot, parent.stateRoot.Multihash()) {
		return failure(chainpb.ErrorCode_state_merkle_mismatch, "block previous_state_merkle_root does not match its parent's state root")
	}
	if len(h.ApprovedProposals) > 0 {
		return failure(chainpb.ErrorCode_malformed_block, "block approves proposals, which Ember does not support")
	}
	return nil
}

// applyBlock validates a verified block against its parent and applies it
// to a new delta, without inserting it into the fork database.
func (c *Chain) applyBlock(vb *sigverify.VerifiedBlock, nowMs uint64) (*node, error) {
	h := vb.Block.Header
	prevID, err := koinos.ParseMultihash(h.Previous)
	if err != nil {
		return nil, failure(chainpb.ErrorCode_malformed_block, "block header.previous: %v", err)
	}
	parent := c.fork.get(prevID)
	if parent == nil {
		if h.Height <= c.fork.root.topo.Height {
			return nil, failure(chainpb.ErrorCode_pre_irreversibility_block, "block %d is at or below the last irreversible block %d and is not on its chain", h.Height, c.fork.root.topo.Height)
		}
		return nil, failure(chainpb.ErrorCode_unknown_previous_block, "block %d builds on unknown block 0x%x", h.Height, h.Previous)
	}
	if err := c.checkHeader(h, vb.Signer, parent, nowMs); err != nil {
		return nil, err
	}
	// The transaction merkle root was checked with the signatures: a
	// VerifiedBlock's transactions are the ones its header commits to.
	if uint64(len(vb.Txs)) > c.params.Limits.MaxBlockTransactions {
		return nil, failure(chainpb.ErrorCode_malformed_block, "block has %d transactions, above the limit of %d", len(vb.Txs), c.params.Limits.MaxBlockTransactions)
	}
	d := state.NewDelta(c.base, parent.delta, 2*len(vb.Txs))
	ex, err := c.execute(d, vb.Txs, blockInfo{height: h.Height, previous: prevID, timeMs: h.Timestamp, lib: parent.final, prevStateRoot: parent.stateRoot, signer: h.Signer}, false, nil)
	if err != nil {
		return nil, err
	}
	d.Freeze()
	sr := d.MerkleRoot()
	topo := Topology{ID: vb.ID, Height: h.Height, Previous: prevID}
	return &node{
		entry:     &BlockEntry{Topology: topo, Block: vb.Block, Receipt: blockReceipt(vb.ID, h.Height, ex, sr), Txs: vb.Txs},
		txs:       vb.Txs,
		topo:      topo,
		parent:    parent,
		delta:     d,
		stateRoot: sr,
		timestamp: h.Timestamp,
		signer:    vb.Signer,
	}, nil
}

// ErrFutureBlock is wrapped by the error of a block whose timestamp is
// further ahead of the node's clock than the genesis drift allows: a clock
// problem (the producer's or this node's), not necessarily a bad block.
var ErrFutureBlock = errors.New("chain: block from the future")

// ErrKnownBlock is returned for a block already in the fork database or
// irreversible.
var ErrKnownBlock = errors.New("chain: block already known")

// ErrSignedAtHeight is returned by BuildUntil when the signer already has a
// block at the height it would build, on another branch above the last
// irreversible block. A second one would be double production, which
// taints both branches on every node that holds the two (forkDB.insert):
// a producer whose head moved to a lower branch (fork choice prefers the
// branch that finalizes more, so after a partition heals it may be lower)
// waits until that branch passes the heights it signed.
var ErrSignedAtHeight = errors.New("chain: this producer already signed a block at this height on another branch")

// ErrNoFinality is returned by BuildUntil when the head's branch holds
// too many blocks above the last irreversible one and this producer's
// signature is already among them: another block of its own would not
// bring irreversibility closer, only grow the fork database. A partition
// that keeps every side below two thirds of the producers thus stops
// after productionDepth blocks instead of growing branches that, past
// chain.max_fork_blocks, the other side could never take back; once the
// sides meet, a producer whose signature is not yet on the winning
// branch builds on it, and its block moves irreversibility.
var ErrNoFinality = errors.New("chain: too many blocks above the last irreversible one")

// productionDepth is how far above the last irreversible block a producer
// builds on a branch it already signed: half the fork database, less one
// block per producer (each may add one past it, ErrNoFinality), so that
// two sides of a partition fit in it together when they meet.
func (c *Chain) productionDepth() uint64 {
	d := c.maxFork/2 - len(c.producers)
	return uint64(max(d, 1))
}

// signedAbove reports whether signer produced a block on n's branch above
// the last irreversible block.
func (c *Chain) signedAbove(n *node, signer koinos.Address) bool {
	for ; n != nil && n != c.fork.root; n = n.parent {
		if n.signer == signer {
			return true
		}
	}
	return false
}

// AcceptBlock applies a verified block from a peer (or this node's store)
// at local time nowMs. The Ready must be committed and advanced before the
// next step.
func (c *Chain) AcceptBlock(vb *sigverify.VerifiedBlock, nowMs uint64) (*Ready, error) {
	if c.unadvanced > 0 {
		return nil, errors.New("chain: AcceptBlock before the previous Ready was advanced")
	}
	if c.fork.get(vb.ID) != nil || c.settled.has(vb.ID) {
		return nil, ErrKnownBlock
	}
	if c.fork.size() >= c.maxFork {
		return nil, failure(chainpb.ErrorCode_block_state_error, "fork database is full (%d blocks above the last irreversible one)", c.maxFork)
	}
	n, err := c.applyBlock(vb, nowMs)
	if err != nil {
		return nil, err
	}
	return c.insert(n), nil
}

// AcceptBlocks applies a group of verified blocks (block sync) in order and
// returns one Ready per block new to the fork database; blocks already
// known are skipped. It stops at the first block that fails and returns
// the Readies of the ones before it with that error. The caller commits the
// Readies in order (store.CommitGroup: one sync for the group), then
// advances each; no step is taken until all are advanced.
func (c *Chain) AcceptBlocks(vbs []*sigverify.VerifiedBlock, nowMs uint64) ([]*Ready, error) {
	if c.unadvanced > 0 {
		return nil, errors.New("chain: AcceptBlocks before the previous Ready was advanced")
	}
	var rs []*Ready
	var err error
	for _, vb := range vbs {
		var r *Ready
		r, err = c.AcceptBlock(vb, nowMs)
		if errors.Is(err, ErrKnownBlock) {
			err = nil
			continue
		}
		if err != nil {
			break
		}
		rs = append(rs, r)
		c.unadvanced = 0 // counted below, for the whole group
	}
	c.unadvanced = len(rs)
	return rs, err
}

// settledIDs is how many irreversible block ids the chain remembers: more
// than a sync batch or a gossip delay can span.
const settledIDs = 4096

// recentIDs is a bounded set of block ids, the oldest forgotten first.
type recentIDs struct {
	set  map[koinos.Digest]struct{}
	ring []koinos.Digest
	next int
}

func (r *recentIDs) has(id koinos.Digest) bool {
	_, ok := r.set[id]
	return ok
}

func (r *recentIDs) add(id koinos.Digest) {
	if r.set == nil {
		r.set = make(map[koinos.Digest]struct{}, settledIDs)
		r.ring = make([]koinos.Digest, settledIDs)
	}
	if _, ok := r.set[id]; ok {
		return
	}
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// Proposal is a block built on the head and applied, waiting for the
// producer's signature.
type Proposal struct {
	Block  *protocol.Block // Id set, Signature empty
	ID     koinos.Digest
	Failed []Failed // transactions left out, and why
	node   *node
}

// Build assembles a block on the current head for the producer signer at
// timestamp ts from candidates, in order: failing ones are left out and
// reported, filling stops at the block limits. Sign Proposal.ID and pass
// the signature to Commit.
func (c *Chain) Build(ts uint64, signer koinos.Address, candidates []*sigverify.VerifiedTx) (*Proposal, error) {
	return c.BuildUntil(ts, signer, candidates, nil)
}

// StopCheckEvery is how many candidates BuildUntil applies between two
// calls of its stop function: often enough to stop within about a
// millisecond of a deadline, rarely enough that the call costs nothing.
const StopCheckEvery = 64

// BuildUntil is Build that also stops packing when stop, called with the
// number of transactions included so far every StopCheckEvery candidates,
// returns true; the block holds what was included before. The chain keeps
// no clock: the producer's stop function brings the time budget (a nil
// stop never stops).
func (c *Chain) BuildUntil(ts uint64, signer koinos.Address, candidates []*sigverify.VerifiedTx, stop func(included int) bool) (*Proposal, error) {
	if c.unadvanced > 0 {
		return nil, errors.New("chain: Build before the previous Ready was advanced")
	}
	parent := c.fork.head
	if signed := c.fork.produced[heightSigner{parent.topo.Height + 1, signer}]; len(signed) > 0 {
		return nil, fmt.Errorf("%w: height %d (block 0x%x); building on 0x%x", ErrSignedAtHeight,
			parent.topo.Height+1, signed[0].topo.ID.Multihash(), parent.topo.ID.Multihash())
	}
	if depth := parent.topo.Height - c.fork.root.topo.Height; depth >= c.productionDepth() && c.signedAbove(parent, signer) {
		return nil, fmt.Errorf("%w: the head is %d blocks above the last irreversible block %d and holds this producer's signature (the limit is %d: half of chain.max_fork_blocks %d, less one per producer); waiting for other producers' blocks",
			ErrNoFinality, depth, c.fork.root.topo.Height, c.productionDepth(), c.maxFork)
	}
	h := &protocol.BlockHeader{
		Previous:                parent.topo.ID.Multihash(),
		Height:                  parent.topo.Height + 1,
		Timestamp:               ts,
		PreviousStateMerkleRoot: parent.stateRoot.Multihash(),
		Signer:                  signer.Bytes(),
	}
	if err := c.checkHeader(h, signer, parent, math.MaxUint64); err != nil {
		return nil, err
	}
	d := state.NewDelta(c.base, parent.delta, 2*len(candidates))
	ex, err := c.execute(d, candidates, blockInfo{height: h.Height, previous: parent.topo.ID, timeMs: ts, lib: parent.final, prevStateRoot: parent.stateRoot, signer: h.Signer}, true, stop)
	if err != nil {
		return nil, err
	}
	d.Freeze()
	h.TransactionMerkleRoot = sigverify.TransactionMerkleRoot(ex.included).Multihash()
	id := koinos.BlockID(h)
	txs := make([]*protocol.Transaction, len(ex.included))
	for i, v := range ex.included {
		txs[i] = v.Tx()
	}
	b := &protocol.Block{Id: id.Multihash(), Header: h, Transactions: txs}
	sr := d.MerkleRoot()
	topo := Topology{ID: id, Height: h.Height, Previous: parent.topo.ID}
	n := &node{
		entry:     &BlockEntry{Topology: topo, Block: b, Receipt: blockReceipt(id, h.Height, ex, sr), Txs: ex.included},
		txs:       ex.included,
		topo:      topo,
		parent:    parent,
		delta:     d,
		stateRoot: sr,
		timestamp: ts,
		signer:    signer,
	}
	return &Proposal{Block: b, ID: id, Failed: ex.failed, node: n}, nil
}

// Commit adds a built block, signed, to the fork database.
func (c *Chain) Commit(p *Proposal, signature []byte) (*Ready, error) {
	if c.unadvanced > 0 {
		return nil, errors.New("chain: Commit before the previous Ready was advanced")
	}
	if c.fork.get(p.node.parent.topo.ID) != p.node.parent {
		return nil, errors.New("chain: the proposal's parent left the fork database")
	}
	p.Block.Signature = signature
	return c.insert(p.node), nil
}

// insert adds an applied block to the fork database and works out the
// consequences: head, reorg, irreversibility, checkpoint.
func (c *Chain) insert(n *node) *Ready {
	oldHead := c.fork.head
	c.fork.insert(n)
	r := &Ready{Accepted: []*BlockEntry{n.entry}}
	newHead := c.fork.chooseHead()
	if newHead != oldHead {
		r.HeadChanged = true
		anc := commonAncestor(oldHead, newHead)
		for o := oldHead; o != anc; o = o.parent {
			r.Reorg.Removed = append(r.Reorg.Removed, o.entry)
		}
		for _, a := range path(anc, newHead) {
			r.Reorg.Added = append(r.Reorg.Added, a.entry)
		}
		c.fork.head = newHead
	}
	if lib := c.fork.irreversibleOn(c.fork.head); lib != c.fork.root {
		for _, m := range c.fork.advanceRoot(lib, c.base) {
			r.Irreversible = append(r.Irreversible, m.entry)
			c.settled.add(m.topo.ID)
		}
		if lib.topo.Height-c.checkpoint.Height >= c.ckInterval {
			r.Checkpoint = &Checkpoint{Topology: lib.topo, Writes: c.base.TakeDirty()}
			c.checkpoint = lib.topo
		}
	}
	r.Meta = c.meta()
	r.view = c.newView()
	c.unadvanced = 1
	return r
}

func (c *Chain) meta() Meta {
	return Meta{ChainID: c.chainID, Head: c.fork.head.topo, LIB: c.fork.root.topo, Checkpoint: c.checkpoint}
}

// Advance tells the chain that r is durable: its head becomes visible to
// readers and the next step may run.
func (c *Chain) Advance(r *Ready) {
	c.view.Store(r.view)
	c.unadvanced = max(c.unadvanced-1, 0)
}

// Checkpoint forces a state checkpoint at the last irreversible block, for
// a clean shutdown: the Ready holds only the checkpoint and metadata.
func (c *Chain) Checkpoint() (*Ready, error) {
	if c.unadvanced > 0 {
		return nil, errors.New("chain: Checkpoint before the previous Ready was advanced")
	}
	c.checkpoint = c.fork.root.topo
	r := &Ready{Checkpoint: &Checkpoint{Topology: c.fork.root.topo, Writes: c.base.TakeDirty()}}
	r.Meta = c.meta()
	r.view = c.view.Load()
	c.unadvanced = 1
	return r, nil
}

// Head returns the topology of the head as the engine sees it, including a
// step not yet advanced. Readers use View.
func (c *Chain) Head() Topology { return c.fork.head.topo }

// HeadTime is the timestamp of the head block (genesis time at genesis).
func (c *Chain) HeadTime() uint64 { return c.fork.head.timestamp }

// Block returns a block of the fork database (above or at the last
// irreversible one), or nil.
func (c *Chain) Block(id koinos.Digest) *BlockEntry {
	if n := c.fork.get(id); n != nil {
		return n.entry
	}
	return nil
}
