package p2p

// The serving side of block sync (/ember/sync/1): answering a peer's fork
// point and block requests from the store, under the serving budget. The
// fetching side is sync.go.

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
)

// handleSync serves fork point and block requests from the store, under
// the serving budget.
func (s *Service) handleSync(st network.Stream) {
	var req p2ppb.SyncRequest
	if !s.readInbound(st, maxSyncRequest, &req, "sync request") {
		return
	}
	if req.Request == nil {
		st.Reset()
		s.penalize(st.Conn().RemotePeer(), penaltyMalformed, "empty sync request")
		return
	}
	if !s.acquireServe(s.life) {
		respond(st, syncError(errNotServed.Error()))
		return
	}
	defer s.releaseServe()
	var resp *p2ppb.SyncResponse
	switch r := req.Request.(type) {
	case *p2ppb.SyncRequest_ForkPoint:
		resp = s.serveForkPoint(r.ForkPoint)
	case *p2ppb.SyncRequest_Blocks:
		resp = s.serveBlocks(r.Blocks)
	}
	out, _ := resp.MarshalVT()
	_ = st.SetWriteDeadline(time.Now().Add(reqDeadline(len(out))))
	respond(st, packBody(out))
}

func syncError(msg string) []byte {
	b, _ := (&p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: msg}}).MarshalVT()
	return packBody(b)
}

func (s *Service) serveForkPoint(req *p2ppb.ForkPointRequest) *p2ppb.SyncResponse {
	v := s.node.View()
	resp := &p2ppb.ForkPointResponse{Head: refOf(v.Head)}
	for i, r := range req.Locator {
		if i == maxLocator {
			break
		}
		ref, err := parseRef(r)
		if err != nil {
			return &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: "malformed locator"}}
		}
		if ref.height == 0 {
			resp.Common = &p2ppb.BlockRef{Height: 0}
			break
		}
		if ref.height > v.Head.Height {
			continue
		}
		id, ok, err := s.node.BlockIDAt(v.Head.ID, ref.height)
		if err != nil {
			s.log.Warn("read the head chain for a peer", "err", err)
			return &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: "block store unavailable"}}
		}
		if ok && id == ref.id {
			resp.Common = r
			break
		}
	}
	return &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_ForkPoint{ForkPoint: resp}}
}

func (s *Service) serveBlocks(req *p2ppb.BlocksRequest) *p2ppb.SyncResponse {
	head, ok := digestOf(req.HeadId)
	if !ok || req.FromHeight == 0 || req.Count == 0 {
		return &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: "malformed blocks request"}}
	}
	count := min(int(req.Count), maxBlocksPerRequest)
	budget := min(int(req.MaxBytes), s.cfg.SyncBatchBytes)
	if budget <= 0 {
		budget = s.cfg.SyncBatchBytes
	}
	blocks, found, err := s.node.BlocksByHeight(head, req.FromHeight, count)
	if err != nil {
		s.log.Warn("read blocks for a peer", "err", err)
		return &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: "block store unavailable"}}
	}
	if !found {
		return &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: errUnknownHead}}
	}
	size := 0
	for i, b := range blocks {
		size += b.SizeVT()
		if i > 0 && size > budget {
			blocks = blocks[:i]
			break
		}
	}
	return &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Blocks{Blocks: &p2ppb.BlocksResponse{Blocks: blocks}}}
}

// errUnknownHead is a blocks response's error when the responder does not
// hold the head asked for (it switched forks, or never had it).
const errUnknownHead = "unknown head"
