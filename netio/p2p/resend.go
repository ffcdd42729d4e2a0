package p2p

import (
	"context"
	"sync"
	"time"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/internal/churnmap"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Gossip is best effort: a batch published while this node had no peer, or
// lost with a peer that disconnected, reaches no producer, and a follower's
// transaction would then wait in its mempool forever. So the transactions
// submitted here are remembered until a block includes them; one still out
// after resendAfter is gossiped again, up to resendTries times in all.
// Peers that already hold it answer from their mempool and verify-once
// cache (a duplicate is nobody's fault), so a resend costs bytes, not
// signature checks.
const (
	resendAfter = 5 * time.Second
	resendTries = 3
	// maxUnconfirmed bounds the transactions tracked; beyond it new ones
	// are gossiped once, untracked.
	maxUnconfirmed = 1 << 17
)

type unconfirmed struct {
	mu sync.Mutex
	// m gains and loses an entry per local transaction: a Go map under
	// that churn keeps growing (churnmap's doc).
	m churnmap.Map[koinos.Digest, *unconfirmedTx]
}

type unconfirmedTx struct {
	v      *sigverify.VerifiedTx
	sentAt time.Time
	tries  int
}

// sent records transactions just gossiped.
func (u *unconfirmed) sent(txs []*sigverify.VerifiedTx, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, v := range txs {
		if e, ok := u.m.Get(v.ID()); ok {
			e.sentAt = now
			continue
		}
		if u.m.Len() < maxUnconfirmed {
			u.m.Set(v.ID(), &unconfirmedTx{v: v, sentAt: now, tries: 1})
		}
	}
}

// included forgets the transactions of a block.
func (u *unconfirmed) included(txs []*protocol.Transaction) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m.Len() == 0 {
		return
	}
	for _, tx := range txs {
		if d, err := koinos.ParseMultihash(tx.Id); err == nil {
			u.m.Delete(d)
		}
	}
}

// due returns the transactions to gossip again, and forgets those out of
// tries.
func (u *unconfirmed) due(now time.Time) []*sigverify.VerifiedTx {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*sigverify.VerifiedTx
	for id, e := range u.m.All() {
		if now.Sub(e.sentAt) < resendAfter {
			continue
		}
		if e.tries >= resendTries {
			u.m.Delete(id)
			continue
		}
		e.tries++
		e.sentAt = now
		out = append(out, e.v)
	}
	return out
}

func (u *unconfirmed) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m.Len()
}

// resendLoop gossips again what no block has included after resendAfter.
func (s *Service) resendLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.syncing.Load() {
			continue
		}
		if again := s.pending.due(s.cfg.Now()); len(again) > 0 {
			s.gossip.resent.Add(uint64(len(again)))
			s.enqueueTxs(again)
		}
	}
}
