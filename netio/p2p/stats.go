package p2p

import (
	"fmt"
	"slices"
	"strings"
)

// Stats is a snapshot of the network for metrics (docs/network.md names
// each one).
type Stats struct {
	Peers    int  // peers past the handshake
	Syncing  bool // catching up with a peer's head
	Gossip   bool // p2p.get_gossip_status
	Banned   int  // bans in force
	BansEver uint64

	// Bytes in and out per protocol (gossip is the meshsub protocol).
	Bandwidth map[string]Bandwidth

	TxBatches     GossipCounts // received transaction batches
	Blocks        GossipCounts // received compact blocks
	TxsPublished  uint64       // transactions this node gossiped
	BatchesPub    uint64       // transaction batches this node gossiped
	BlocksPub     uint64       // blocks this node announced
	BacklogDrops  uint64       // local transactions not gossiped (backlog full)
	Resent        uint64       // local transactions gossiped again, no block having included them
	Unconfirmed   int          // local transactions gossiped and not yet seen in a block
	EventsLagged  uint64       // node events the gossip missed
	RebuiltBlocks uint64       // compact blocks rebuilt (fully or partly) from known transactions
	FetchedTxs    uint64       // transactions fetched to complete compact blocks
	FetchedWhole  uint64       // blocks fetched whole

	// Messages gossipsub dropped under load, per topic and reason
	// (DropReasons): full validation queue, too many validations at once,
	// a peer's full outbound queue, a subscription read too slowly.
	TxDrops, BlockDrops GossipDrops
	ControlDrops        uint64 // outgoing RPCs without messages (control, subscriptions) dropped: full outbound queue
	ThrottledRPCs       uint64 // RPCs whose messages were ignored: the router throttled their sender

	SyncTarget        uint64 // height a running sync heads for (0: none)
	SyncBlocks        uint64 // blocks applied by sync
	SyncTxs           uint64
	SyncBytes         uint64 // bytes of block batches received
	SyncRounds        uint64
	SyncBlocksRate    uint64 // blocks/s in the last progress period
	SyncTxsRate       uint64
	FinalityConflicts uint64 // peers whose chain lacked this node's last irreversible block (docs/network.md)
	SyncBadPeers      uint64 // invalid blocks served to sync (each scored against its peer)
	SyncBuffered      int64  // bytes in the sync buffer now: fetched (or being fetched) ahead of verification
	SyncBufferFull    uint64 // times a sync fetcher waited for room in the buffer (its cap: 2 × SyncPeers × SyncBatchBytes)
	ServeBusy         uint64 // sync and fetch requests answered "busy": every serving slot taken for 1 s
}

// GossipCounts are validation outcomes of one topic.
type GossipCounts struct{ Accepted, Rejected, Ignored uint64 }

// Bandwidth is bytes moved by one protocol.
type Bandwidth struct{ In, Out int64 }

// Stats returns a snapshot.
func (s *Service) Stats() Stats {
	active, total := s.guard.banCounts()
	st := Stats{
		Peers: s.peers.count(), Syncing: s.syncing.Load(), Gossip: s.GossipEnabled(), Banned: active, BansEver: total,
		TxBatches:         GossipCounts{s.gossip.txAccepted.Load(), s.gossip.txRejected.Load(), s.gossip.txIgnored.Load()},
		Blocks:            GossipCounts{s.gossip.blockAccepted.Load(), s.gossip.blockRejected.Load(), s.gossip.blockIgnored.Load()},
		TxsPublished:      s.gossip.txsPublished.Load(),
		BatchesPub:        s.gossip.batchesPublished.Load(),
		BlocksPub:         s.gossip.blocksAnn.Load(),
		BacklogDrops:      s.gossip.backlogDropped.Load(),
		Resent:            s.gossip.resent.Load(),
		Unconfirmed:       s.pending.len(),
		EventsLagged:      s.gossip.eventsLagged.Load(),
		RebuiltBlocks:     s.gossip.rebuiltLocal.Load(),
		FetchedTxs:        s.gossip.fetchedTxs.Load(),
		FetchedWhole:      s.gossip.fetchedWhole.Load(),
		SyncTarget:        s.syncStat.target.Load(),
		SyncBlocks:        s.syncStat.blocks.Load(),
		SyncTxs:           s.syncStat.txs.Load(),
		SyncBytes:         s.syncStat.bytes.Load(),
		SyncRounds:        s.syncStat.rounds.Load(),
		SyncBlocksRate:    s.syncStat.rateBlocks.Load(),
		SyncTxsRate:       s.syncStat.rateTxs.Load(),
		SyncBadPeers:      s.syncStat.invalidPeers.Load(),
		SyncBuffered:      s.syncStat.buffered.Load(),
		SyncBufferFull:    s.syncStat.bufferFull.Load(),
		FinalityConflicts: s.conflicts.Load(),
		ServeBusy:         s.serveBusy.Load(),
		Bandwidth:         map[string]Bandwidth{},
	}
	st.TxDrops, st.BlockDrops, st.ControlDrops, st.ThrottledRPCs = s.drops.snapshot()
	for p, b := range s.bw.GetBandwidthByProtocol() {
		name := string(p)
		if name == "" {
			name = "negotiation"
		}
		st.Bandwidth[name] = Bandwidth{In: b.TotalIn, Out: b.TotalOut}
	}
	return st
}

// PeerInfo is one connected peer, for operators (the admin listener's
// GET /p2p/peers).
type PeerInfo struct {
	ID        string  `json:"id"`
	Address   string  `json:"address"` // the connection's remote multiaddr
	Handshake bool    `json:"handshake"`
	Head      uint64  `json:"head_height"`
	HeadID    string  `json:"head_id,omitempty"`
	LIB       uint64  `json:"last_irreversible_block"`
	Score     float64 `json:"error_score"` // decaying; banned at 100,000
}

// Peers lists the connected peers, sorted by id.
func (s *Service) Peers() []PeerInfo {
	if s.host == nil {
		return nil
	}
	st := s.peers.snapshot()
	var out []PeerInfo
	for _, p := range s.host.Network().Peers() {
		pi := PeerInfo{ID: p.String(), Score: s.guard.score(p)}
		if cs := s.host.Network().ConnsToPeer(p); len(cs) > 0 {
			pi.Address = cs[0].RemoteMultiaddr().String()
		}
		if ps, ok := st[p]; ok {
			pi.Handshake, pi.Head, pi.LIB = true, ps.head.height, ps.lib.height
			if ps.head.height > 0 {
				pi.HeadID = fmt.Sprintf("0x%x", ps.head.id.Multihash())
			}
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}
