package node

import (
	"bufio"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/emberchain/ember/netio/p2p"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
)

// syncOutcome is how one flooded sync request ended.
type syncOutcome int

const (
	syncServed  syncOutcome = iota // blocks
	syncBusy                       // "busy": every serving slot taken for 1 s
	syncRefused                    // the stream was refused (the per-peer stream cap)
	syncFailed                     // anything else: a hang, a bad answer
)

// requestBlocks asks m, from e, for the blocks of its head chain from
// height 1, as a syncing peer would.
func (e *evilPeer) requestBlocks(m *member) (syncOutcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.h.NewStream(ctx, m.n.Network().ID(), p2p.ProtocolSync)
	if err != nil {
		return syncRefused, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	head := m.n.Chain().View().Head
	req, _ := (&p2ppb.SyncRequest{Request: &p2ppb.SyncRequest_Blocks{Blocks: &p2ppb.BlocksRequest{
		HeadId: head.ID.Multihash(), FromHeight: 1, Count: 1000, MaxBytes: 8 << 20}}}).MarshalVT()
	if err := p2p.WriteFrame(s, req); err != nil {
		return syncRefused, err // reset as it opened: refused
	}
	_ = s.CloseWrite()
	raw, err := p2p.ReadFrame(bufio.NewReader(s), 16<<20)
	if err != nil {
		return syncRefused, err
	}
	body, err := p2p.UnpackBody(raw, 16<<20)
	if err != nil {
		return syncFailed, err
	}
	var resp p2ppb.SyncResponse
	if err := resp.UnmarshalVT(body); err != nil {
		return syncFailed, err
	}
	switch {
	case len(resp.GetBlocks().GetBlocks()) > 0:
		return syncServed, nil
	case resp.GetError() != "":
		return syncBusy, errors.New(resp.GetError())
	}
	return syncFailed, errors.New("an empty sync response")
}

// A flood of sync requests from several peers at once is answered,
// refused at the stream, or answered "busy", never left hanging, and the
// node keeps producing through it; slow peers that open streams and stall
// their requests are held to the per-peer stream cap, the rest refused, and
// another peer is served meanwhile; once it ends a request is served
// normally.
func TestSyncRequestFloodIsBounded(t *testing.T) {
	c := newCluster(t, 1, 0, 100*time.Millisecond)
	prod := c.add(0)
	waitFor(t, 20*time.Second, "a few blocks", func() bool { return prod.head() >= 10 })
	const peers, perPeer = 4, 64
	evils := make([]*evilPeer, peers)
	for i := range evils {
		evils[i] = newEvilPeer(t, honestStatus(prod))
		evils[i].connect(prod)
	}
	waitFor(t, 10*time.Second, "the handshakes", func() bool { return prod.n.Network().Stats().Peers >= peers })
	from := prod.head()
	var counts [syncFailed + 1]atomic.Int64
	var slowest atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	for _, e := range evils {
		for range perPeer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				o, err := e.requestBlocks(prod)
				counts[o].Add(1)
				if o == syncFailed {
					failures.Store(err.Error(), true)
				}
				took := int64(time.Since(start))
				for cur := slowest.Load(); took > cur && !slowest.CompareAndSwap(cur, took); cur = slowest.Load() {
				}
			}()
		}
	}
	wg.Wait()
	served, busy, refused, failed := counts[syncServed].Load(), counts[syncBusy].Load(), counts[syncRefused].Load(), counts[syncFailed].Load()
	t.Logf("%d requests: %d served, %d busy, %d refused at the stream; slowest %s; head %d -> %d",
		peers*perPeer, served, busy, refused, time.Duration(slowest.Load()).Round(time.Millisecond), from, prod.head())
	if failed > 0 {
		var errs []string
		failures.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return true })
		t.Fatalf("%d requests failed otherwise: %v", failed, errs)
	}
	if served == 0 {
		t.Fatal("no request of the flood was served")
	}
	if st := prod.n.Network().Stats(); st.ServeBusy < uint64(busy) {
		t.Fatalf("ember_p2p_serve_busy_total is %d, below the %d busy answers", st.ServeBusy, busy)
	}
	waitFor(t, 20*time.Second, "production through the flood", func() bool { return prod.head() >= from+5 })

	// Slow peers: each opens perPeer sync streams and sends a request's
	// first byte only. The
	// node holds at most syncStreamsPerPeer of them (its resource
	// manager's cap on the sync protocol per peer: 2 × p2p.sync_peers),
	// refuses the rest at once, and ends the held ones after its read
	// deadline (5 s); meanwhile another peer is served.
	const syncStreamsPerPeer = 2 * p2p.DefaultSyncPeers
	streams := make([][]network.Stream, peers)
	for i, e := range evils {
		for range perPeer {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s, err := e.h.NewStream(ctx, prod.n.Network().ID(), p2p.ProtocolSync)
			cancel()
			// A frame's length and none of its bytes: the protocol is
			// negotiated (lazily, with the first write) and the node waits
			// for the rest.
			if err == nil && s.SetWriteDeadline(time.Now().Add(5*time.Second)) == nil {
				if _, err := s.Write([]byte{100}); err == nil {
					streams[i] = append(streams[i], s)
					// Read the node's answer to the negotiation now (an
					// empty read does that and no more): a lazily
					// negotiated stream's first read reads it, and an
					// error there is kept as the stream's for good. Under
					// load open's 1 ms deadline ran out before the answer
					// came, and the stream looked held long after the
					// node had reset it (the final wait timed out on peer
					// 0's first streams).
					_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, _ = s.Read(nil)
				}
			}
		}
	}
	open := func(i int) int {
		n := 0
		for _, s := range streams[i] {
			_ = s.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := s.Read(make([]byte, 1)); isTimeout(err) {
				n++
			}
		}
		return n
	}
	// A stream the node refuses still looks open here until the refusal
	// arrives, and one it holds is ended by the node 5 s after its first
	// byte; opening 4 × perPeer streams takes seconds under -race or load.
	// So the counts are read until they settle (unchanged for a second;
	// two passes 50 ms apart were once alike with two refusals still on
	// their way, counts [10 8 8 8]): then no peer may hold more than the
	// cap. Some must still be held unless opening took longer than the
	// node's deadline (logged: the cap was then not observed in this run,
	// only the refusals).
	const settle = time.Second
	var prev []int
	settled := false
	changed := time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !settled; time.Sleep(50 * time.Millisecond) {
		counts := make([]int, len(evils))
		for i := range evils {
			counts[i] = open(i)
		}
		if !slices.Equal(counts, prev) {
			changed = time.Now()
		}
		settled = prev != nil && time.Since(changed) >= settle
		prev = counts
	}
	// A stream over the cap is negotiated first and reset after (the
	// resource manager refuses it when its protocol is set), so it looks
	// held here until the reset arrives, for more than a second at times
	// under -race (counts [8 9 8 8] in CI). One held by the node stays
	// until its read deadline: so a peer's count is the lower of two
	// readings 1.5 s apart.
	if settled {
		time.Sleep(1500 * time.Millisecond)
		for i := range evils {
			prev[i] = min(prev[i], open(i))
		}
	}
	total := 0
	for i, n := range prev {
		if n > syncStreamsPerPeer {
			t.Fatalf("slow peer %d holds %d sync streams on the node, more than its cap of %d (counts %v, settled %v)", i, n, syncStreamsPerPeer, prev, settled)
		}
		total += n
	}
	if !settled {
		t.Fatalf("the slow peers' stream counts never settled: %v", prev)
	}
	if total == 0 {
		t.Logf("slow peers: the node had ended every held stream before the counts settled (opening took longer than its 5 s deadline); the cap was not observed this run")
	} else {
		t.Logf("slow peers: %d streams opened each, held by the node %v (at most %d a peer), the rest refused", perPeer, prev, syncStreamsPerPeer)
	}
	other := newEvilPeer(t, honestStatus(prod))
	other.connect(prod)
	waitFor(t, 10*time.Second, "the other peer's handshake", func() bool { return prod.n.Network().Stats().Peers >= peers+1 })
	if o, err := other.requestBlocks(prod); o != syncServed {
		t.Fatalf("another peer is not served while slow peers hold streams: %v", err)
	}
	waitFor(t, 15*time.Second, "the held streams ended by the node", func() bool {
		return open(0)+open(1)+open(2)+open(3) == 0
	})
	for _, ss := range streams {
		for _, s := range ss {
			s.Reset()
		}
	}
	if o, err := evils[0].requestBlocks(prod); o != syncServed {
		t.Fatalf("after the flood a request is not served: %v", err)
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
