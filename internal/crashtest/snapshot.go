package crashtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/emberchain/ember/producer"
	"github.com/emberchain/ember/store"
)

// storeSnapshot is what a copy of the killed node's store held.
type storeSnapshot struct {
	guard GuardCheck // FirstNew filled in after the restart
}

// inspectStore copies the killed node's store, as the restarted node will
// find it (a SIGKILL loses no written data; the page cache holds it), opens
// the copy offline and checks it: it opens, its last irreversible block is
// not below the one reported, its event log has no gap, and the sign guard
// covers its head. The copy is removed afterwards; the node restarts on
// the original, untouched by this.
func (h *harness) inspectStore(k int, nextBefore uint64) (*storeSnapshot, error) {
	src := filepath.Join(h.datadir, "data", "store")
	dst := filepath.Join(h.dir, fmt.Sprintf("killed-%03d", k))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return nil, fmt.Errorf("crashtest: copy the killed store: %w", err)
	}
	defer os.RemoveAll(dst)
	st, err := store.Open(dst, store.Options{})
	if err != nil {
		return nil, violation(InvStoreReopens, "the store of the node killed at kill %d does not open: %v", k, err)
	}
	defer st.Close()
	h.sum.StoreCopiesChecked++
	meta, found, err := st.LoadMeta()
	if err != nil || !found {
		return nil, violation(InvStoreReopens, "kill %d: the store's metadata: found=%v, %v", k, found, err)
	}
	if reported := h.ledger.MaxLIB(); meta.LIB.Height < reported {
		h.fail(violation(InvBlocksKept, "kill %d: the store's last irreversible block is %d, but the node had reported %d", k, meta.LIB.Height, reported))
	}
	if err := CheckHead(meta.Head.Height, meta.LIB.Height, 0); err != nil {
		h.fail(err)
	}
	sum, n := readLogSummary(st)
	sum.LIB, sum.NextBefore = meta.LIB.Height, nextBefore
	h.sum.EventLogRecords += n
	if err := CheckEventLog(sum); err != nil {
		h.fail(fmt.Errorf("kill %d: %w", k, err))
	}

	snap := &storeSnapshot{guard: GuardCheck{ProducerKey: h.producer}}
	if meta.Head.Height > 0 {
		e, err := st.BlockByID(meta.Head.ID)
		if err != nil {
			return nil, violation(InvStoreReopens, "kill %d: the stored head block: %v", k, err)
		}
		hdr := e.Block.GetHeader()
		slot, err := h.slotOf(e.Height, hdr.GetTimestamp())
		if err != nil {
			return nil, violation(InvStoreReopens, "kill %d: the stored head: %v", k, err)
		}
		snap.guard.StoredHead = Block{Height: e.Height, ID: addrString(e.ID.Multihash()), Signer: addrString(hdr.GetSigner()), Slot: slot}
	}
	// The guard file is read in place: the node is dead and reading
	// changes nothing.
	gpath := filepath.Join(h.datadir, "data", "sign-guard")
	if _, err := os.Stat(gpath); err == nil {
		g, err := producer.OpenFileGuard(gpath)
		if err != nil {
			h.fail(violation(InvSignGuard, "kill %d: %v", k, err))
			return nil, nil
		}
		snap.guard.GuardSlot, _ = g.Last()
		snap.guard.HaveGuard = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("crashtest: %w", err)
	}
	if snap.guard.HaveGuard && snap.guard.GuardSlot > snap.guard.StoredHead.Slot {
		h.sum.GuardAhead++
	}
	// Judge the stored head now; the first new block after the restart.
	if err := CheckSignGuard(snap.guard); err != nil {
		h.fail(fmt.Errorf("kill %d: %w", k, err))
	}
	return snap, nil
}

// readLogSummary reads the whole retained event log of st.
func readLogSummary(st *store.Store) (LogSummary, int) {
	ls := st.LogStatus()
	s := LogSummary{First: ls.First, Next: ls.Next}
	s.IndexCursor, s.HasIndexCursor = ls.Consumers[store.IndexConsumer]
	n := 0
	for seq := ls.First; seq < ls.Next; {
		recs, err := st.ReadLog(seq, 1000)
		if err != nil {
			s.ReadErr = err
			return s, n
		}
		if len(recs) == 0 {
			s.ReadErr = fmt.Errorf("no record at %d, before the log's end %d", seq, ls.Next)
			return s, n
		}
		if recs[0].Seq > seq {
			s.ReadErr = fmt.Errorf("asked for %d, the first record starts at %d", seq, recs[0].Seq)
			return s, n
		}
		for i := range recs {
			r := &recs[i]
			switch r.Kind {
			case store.LogIrreversible:
				s.Irreversible = append(s.Irreversible, r.Block.Height)
			case store.LogBlockAccepted:
				if ok, err := st.HasBlock(r.Block.ID); err != nil || !ok {
					s.AcceptedMissing = append(s.AcceptedMissing, r.Block.Height)
				}
			}
		}
		n += len(recs)
		seq = recs[len(recs)-1].Next()
	}
	return s, n
}
