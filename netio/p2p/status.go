package p2p

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/emberchain/ember/engine/chain"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
)

const (
	maxStatusBytes = 1024
	statusTimeout  = 5 * time.Second
	// settleTimeout bounds how long a node that has static peers waits for
	// their heads before it may produce.
	settleTimeout = 2 * statusInterval
	// headRegression is how far a peer's head may go down between polls
	// without being called a lie: double production makes the head fall
	// back to a parent.
	headRegression = 2
)

func refOf(t chain.Topology) *p2ppb.BlockRef {
	return &p2ppb.BlockRef{Id: t.ID.Multihash(), Height: t.Height}
}

func parseRef(r *p2ppb.BlockRef) (blockRef, error) {
	if r == nil {
		return blockRef{}, errors.New("missing block reference")
	}
	if r.Height == 0 {
		return blockRef{}, nil // the genesis state: the zero id
	}
	d, ok := digestOf(r.Id)
	if !ok {
		return blockRef{}, fmt.Errorf("block %d has a malformed id", r.Height)
	}
	return blockRef{id: d, height: r.Height}, nil
}

func (s *Service) ourStatus() *p2ppb.Status {
	v := s.node.View()
	return &p2ppb.Status{Version: Version, ChainId: s.chainID, Head: refOf(v.Head), HeadTime: v.HeadTime, LastIrreversible: refOf(v.LIB), Agent: s.cfg.Agent}
}

// handleStatus answers a peer's status with ours and records theirs.
func (s *Service) handleStatus(st network.Stream) {
	var theirs p2ppb.Status
	if !s.readInbound(st, maxStatusBytes, &theirs, "status") {
		return
	}
	ours, _ := s.ourStatus().MarshalVT()
	if err := writeFrame(st, ours); err != nil {
		st.Reset()
		return
	}
	st.Close()
	s.checkStatus(st.Conn().RemotePeer(), &theirs, false)
}

// exchangeStatus sends our status to a peer and records its answer: the
// handshake on a new connection, then the head poll.
func (s *Service) exchangeStatus(ctx context.Context, p peer.ID) error {
	req, _ := s.ourStatus().MarshalVT()
	resp, err := s.request(ctx, p, protoStatus, req, maxStatusBytes, statusTimeout)
	if err != nil {
		if errors.Is(err, errFrameTooLarge) {
			s.penalize(p, penaltyMalformed, "status message too large")
		}
		return err
	}
	var theirs p2ppb.Status
	if err := theirs.UnmarshalVT(resp); err != nil {
		s.penalize(p, penaltyMalformed, "undecodable status", "err", err)
		return err
	}
	s.checkStatus(p, &theirs, true)
	return nil
}

// checkStatus admits or refuses a peer by its status and notes its head:
// another chain or protocol version is banned at once, a last irreversible
// block that went back (or a head that fell far) is a lie. Only a status
// this node polled is compared, with the one it polled before: one the
// peer sent with its own poll may have been built before the answer to
// ours and arrive after it (both directions run at once, and a loaded
// node is slow to read), so an honest peer's LIB would seem to go back.
func (s *Service) checkStatus(p peer.ID, st *p2ppb.Status, polled bool) {
	if st.Version != Version {
		s.banNow(p, fmt.Sprintf("speaks protocol version %d, this node %d", st.Version, Version))
		return
	}
	if !bytes.Equal(st.ChainId, s.chainID) {
		s.banNow(p, fmt.Sprintf("is on chain 0x%x, this node on 0x%x", st.ChainId, s.chainID))
		return
	}
	head, err1 := parseRef(st.Head)
	lib, err2 := parseRef(st.LastIrreversible)
	if err := errors.Join(err1, err2); err != nil || lib.height > head.height {
		s.penalize(p, penaltyMalformed, "malformed status", "err", err)
		return
	}
	prev, had, known := s.peers.setStatus(p, peerStatus{head: head, lib: lib, at: s.cfg.Now()}, polled)
	if !known {
		return // disconnected meanwhile
	}
	if !had {
		s.log.Info("peer connected", "peer", p.String(), "agent", st.Agent, "head", head.height, "lib", lib.height)
		if !s.settled.Load() && s.staticAnswered() {
			s.settled.Store(true)
		}
	} else if polled && prev.ok {
		if lib.height < prev.lib.height {
			s.penalize(p, penaltyLie, "its last irreversible block went back", "was", prev.lib.height, "now", lib.height)
		} else if head.height+headRegression < prev.head.height {
			s.penalize(p, penaltyLie, "its head went back", "was", prev.head.height, "now", head.height)
		}
	}
	if s.worthSyncing(head, lib, s.node.View()) {
		s.wakeSync()
	}
}

// pollLoop asks every peer for its head every statusInterval, and marks the
// node settled once the static peers have answered (or settleTimeout has
// passed).
func (s *Service) pollLoop(ctx context.Context) {
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	settle := time.NewTimer(settleTimeout)
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-settle.C:
			if !s.settled.Load() {
				s.log.Info("not every static peer answered; producing may start without them", "waited", settleTimeout)
				s.settled.Store(true)
			}
		case <-t.C:
			s.guard.prune()
			var wg sync.WaitGroup
			for _, p := range s.host.Network().Peers() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := s.exchangeStatus(ctx, p); err != nil && ctx.Err() == nil {
						s.log.Debug("status poll", "peer", p.String(), "err", err)
					}
				}()
			}
			wg.Wait()
		}
		if !s.settled.Load() && s.staticAnswered() {
			s.settled.Store(true)
		}
	}
}

// staticAnswered reports whether every static peer completed the
// handshake.
func (s *Service) staticAnswered() bool {
	for _, ai := range s.static {
		if ai.ID != s.host.ID() && !s.peers.ready(ai.ID) {
			return false
		}
	}
	return true
}

// request sends one request on a new stream and reads one response of at
// most maxResp bytes, all within timeout.
func (s *Service) request(ctx context.Context, p peer.ID, proto protocol.ID, req []byte, maxResp int, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := s.host.NewStream(ctx, p, proto)
	if err != nil {
		return nil, fmt.Errorf("p2p: open %s to %s: %w", proto, p, err)
	}
	// The stream's reads follow the deadline, not ctx: the nearer of the
	// two (a gossip validation's own timeout may come first).
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = st.SetDeadline(deadline)
	if err := writeFrame(st, req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("p2p: send %s request: %w", proto, err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return nil, fmt.Errorf("p2p: send %s request: %w", proto, err)
	}
	resp, err := readFrame(bufio.NewReader(st), maxResp)
	if err != nil {
		st.Reset()
		if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %s from %s after %s", errTimeout, proto, p, timeout)
		}
		return nil, fmt.Errorf("p2p: read %s response: %w", proto, err)
	}
	st.Close()
	return resp, nil
}

var errTimeout = errors.New("p2p: request timed out")

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// readInbound reads one request of at most max bytes from an inbound
// stream (within statusTimeout) and decodes it into m. On a bad request
// it resets the stream, scores the peer (a message over its limit or that
// does not decode is malformed; a stream that ends early is not scored)
// and returns false.
func (s *Service) readInbound(st network.Stream, max int, m interface{ UnmarshalVT([]byte) error }, what string) bool {
	p := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(statusTimeout))
	b, err := readFrame(bufio.NewReader(st), max)
	if err != nil {
		st.Reset()
		if errors.Is(err, errFrameTooLarge) {
			s.penalize(p, penaltyMalformed, what+" too large")
		}
		return false
	}
	if err := m.UnmarshalVT(b); err != nil {
		st.Reset()
		s.penalize(p, penaltyMalformed, "undecodable "+what, "err", err)
		return false
	}
	return true
}

// respond writes one response and closes the stream.
func respond(st network.Stream, b []byte) {
	if err := writeFrame(st, b); err != nil {
		st.Reset()
		return
	}
	st.Close()
}
