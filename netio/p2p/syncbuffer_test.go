package p2p

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/internal/syncbuf"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// blockServer is a peer that serves a made-up chain over /ember/sync/1:
// linked headers, each block padded to a size, perResponse blocks per
// response whatever was asked (the rest of each window is handed back and
// asked for again).
type blockServer struct {
	blocks      []*protocol.Block // height i+1 at i
	perResponse int
	served      atomic.Int64 // blocks sent
}

func newBlockServer(t *testing.T, n, size, perResponse int) (host.Host, *blockServer) {
	t.Helper()
	srv := &blockServer{perResponse: perResponse}
	var prev koinos.Digest
	for h := 1; h <= n; h++ {
		hdr := &protocol.BlockHeader{Height: uint64(h), Previous: prev.Multihash(), Timestamp: uint64(h)}
		id := koinos.BlockID(hdr)
		srv.blocks = append(srv.blocks, &protocol.Block{Id: id.Multihash(), Header: hdr, Signature: make([]byte, size)})
		prev = id
	}
	h := newLoopbackHost(t)
	h.SetStreamHandler(protoSync, func(st network.Stream) {
		defer st.Close()
		raw, err := readFrame(bufio.NewReader(st), maxSyncRequest)
		if err != nil {
			st.Reset()
			return
		}
		var req p2ppb.SyncRequest
		if err := req.UnmarshalVT(raw); err != nil || req.GetBlocks() == nil {
			st.Reset()
			return
		}
		from, count := int(req.GetBlocks().FromHeight), int(req.GetBlocks().Count)
		if from < 1 || from > n {
			respond(st, syncError("no such height"))
			return
		}
		out := srv.blocks[from-1 : min(n, from-1+min(count, srv.perResponse))]
		srv.served.Add(int64(len(out)))
		b, _ := (&p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Blocks{Blocks: &p2ppb.BlocksResponse{Blocks: out}}}).MarshalVT()
		respond(st, packBody(b))
	})
	return h, srv
}

func (srv *blockServer) head() blockRef {
	last := srv.blocks[len(srv.blocks)-1]
	return blockRef{id: koinos.BlockID(last.Header), height: last.Header.Height}
}

// gatedNode is the node as sync sees it, with verification held until
// open is closed: a node slower to verify than its peers are to serve.
type gatedNode struct {
	Node    // not called by a sync round otherwise
	open    chan struct{}
	applied atomic.Int64
	next    atomic.Uint64 // the height it expects next
}

func (g *gatedNode) View() *chain.View { return &chain.View{} }

func (g *gatedNode) VerifyBlock(ctx context.Context, b *protocol.Block) (*sigverify.VerifiedBlock, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &sigverify.VerifiedBlock{Block: b}, nil
}

func (g *gatedNode) ApplyBlocks(_ context.Context, vbs []*sigverify.VerifiedBlock, _ events.Origin, _ string) ([]*chain.BlockEntry, error) {
	out := make([]*chain.BlockEntry, len(vbs))
	for i, vb := range vbs {
		if h := vb.Block.Header.Height; h != g.next.Load() {
			return nil, fmt.Errorf("applied height %d, want %d", h, g.next.Load())
		}
		g.next.Add(1)
		out[i] = &chain.BlockEntry{Block: vb.Block}
	}
	g.applied.Add(int64(len(vbs)))
	return out, nil
}

// A peer serving far more than the sync buffer's cap, one block per
// response (so every window is cut short and handed back), while
// verification is held: the buffer never holds more than its cap, plus
// what a block larger than a response's budget adds; the fetcher waits
// (counted, logged), and once verification goes on the round applies
// every block in order. Blocks just under the budget fill the buffer
// with several; blocks larger than the whole cap come one at a time.
func TestSyncBufferHoldsItsCap(t *testing.T) {
	const batchBytes = 64 << 10
	for _, tc := range []struct {
		name       string
		blockBytes int
		blocks     int
	}{
		{"blocks under the budget", 48 << 10, 96},     // 4.5 MiB: 36 times the cap
		{"blocks larger than the cap", 200 << 10, 40}, // 7.8 MiB
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A block over the budget is served whole and may take the
			// buffer past its cap by the difference (syncbuffer.go).
			over := max(0, tc.blockBytes-batchBytes)
			testSyncBufferCap(t, batchBytes, tc.blockBytes, tc.blocks, over)
		})
	}
}

func testSyncBufferCap(t *testing.T, batchBytes, blockBytes, blocks, over int) {
	srvHost, srv := newBlockServer(t, blocks, blockBytes, 1)
	logs := &syncbuf.Buffer{}
	cfg := Config{SyncPeers: 1, SyncBatchBytes: batchBytes, MaxBlockBytes: 1 << 20}
	cfg.EnsureDefaults()
	node := &gatedNode{open: make(chan struct{})}
	node.next.Store(1)
	s := &Service{
		cfg: cfg, node: node, log: slog.New(slog.NewTextHandler(logs, nil)),
		host: newLoopbackHost(t), guard: newGuard(cfg.BanDuration, cfg.Now), peers: newPeerTable(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.host.Connect(ctx, peer.AddrInfo{ID: srvHost.ID(), Addrs: srvHost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	r := &syncRound{s: s, target: srvHost.ID(), head: srv.head(), next: 1, end: uint64(blocks)}
	limit := r.maxBuffered() + over
	type result struct {
		applied int
		err     error
	}
	done := make(chan result, 1)
	go func() {
		applied, err := r.run(ctx)
		done <- result{applied, err}
	}()
	peak := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.peak
	}

	// Either the fetcher stops for room, or (without a cap) the peer has
	// served the whole chain into memory.
	waitUntil(t, time.Minute, "the fetcher to wait for room, or every block to be served", func() bool {
		return s.syncStat.bufferFull.Load() > 0 || srv.served.Load() == int64(blocks)
	})
	if p := peak(); p > limit {
		t.Fatalf("the sync buffer held %d bytes, at most %d allowed (cap %d; %d of %d blocks served while none was verified)",
			p, limit, r.maxBuffered(), srv.served.Load(), blocks)
	}
	if n := s.syncStat.buffered.Load(); n <= 0 || n > int64(limit) {
		t.Fatalf("ember_p2p_sync_buffered_bytes %d while full, want in (0, %d]", n, limit)
	}
	if !strings.Contains(logs.String(), "sync buffer full") {
		t.Fatalf("the wait for room was not logged:\n%s", logs.String())
	}

	close(node.open)
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		t.Fatal("the round did not finish once verification went on")
	}
	if res.err != nil || res.applied != blocks || node.applied.Load() != int64(blocks) {
		t.Fatalf("round: applied %d (node %d) of %d, err %v", res.applied, node.applied.Load(), blocks, res.err)
	}
	if p := peak(); p > limit {
		t.Fatalf("the sync buffer held %d bytes, at most %d allowed", p, limit)
	}
	if n, waits := s.syncStat.buffered.Load(), s.syncStat.bufferFull.Load(); n != 0 || waits == 0 {
		t.Fatalf("after the round: buffered %d (want 0), waits for room %d (want some)", n, waits)
	}
	t.Logf("peak %d bytes, cap %d; %d waits for room", peak(), r.maxBuffered(), s.syncStat.bufferFull.Load())
}
