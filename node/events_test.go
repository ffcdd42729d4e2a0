package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/store"
)

// The stream carries a submission, the block that includes it and the head
// change, in order, numbered without gaps.
func TestEventStreamFollowsATransaction(t *testing.T) {
	tn := newTestNet(t, 2, 50*time.Millisecond)
	sub := tn.n.Events().Subscribe("test", true)
	defer sub.Close()
	tx := tn.transfer(0, tn.users[1].Address(), 5, 1)
	if _, err := tn.submit(tx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seq uint64
	admitted, included := false, false
	for !included {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after admitted=%v: %v", admitted, err)
		}
		if seq != 0 && ev.Seq != seq+1 {
			t.Fatalf("event %d follows %d", ev.Seq, seq)
		}
		seq = ev.Seq
		switch ev.Kind {
		case events.TxAdmitted:
			if len(ev.Txs) == 1 && bytes.Equal(ev.Txs[0].Tx().Id, tx.Id) {
				if ev.Origin != events.Local {
					t.Errorf("origin %v", ev.Origin)
				}
				admitted = true
			}
		case events.BlockAccepted:
			for _, btx := range ev.Block.Block.Transactions {
				if bytes.Equal(btx.Id, tx.Id) {
					if !admitted {
						t.Fatal("block event before the admission event")
					}
					included = true
					// The next event is the head change to that block.
					hv, err := sub.Next(ctx)
					if err != nil || hv.Kind != events.HeadChanged || hv.Head.ID != ev.Block.ID {
						t.Fatalf("after the block: %v %v", hv.Kind, err)
					}
				}
			}
		}
	}
}

// A follower applies a producer's blocks as one group: one commit, the
// head and state of the producer, one BlockAccepted per block in order.
func TestApplyBlocksGroup(t *testing.T) {
	tn := newTestNet(t, 2, 30*time.Millisecond)
	for i := uint64(1); i <= 4; i++ {
		tx := tn.transfer(0, tn.users[1].Address(), 7, i)
		if _, err := tn.submit(tx); err != nil {
			t.Fatal(err)
		}
		tn.waitTx(tx.Id)
	}
	head := tn.n.Chain().View().Head
	entries, err := tn.n.Store().BlocksByHeight(head.ID, 1, int(head.Height))
	if err != nil || len(entries) != int(head.Height) {
		t.Fatalf("read the producer's chain: %d blocks, %v", len(entries), err)
	}
	f, err := New(Config{DataDir: t.TempDir(), Genesis: tn.g})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-f.Started()
	sub := f.Events().Subscribe("test", true)
	vbs := make([]*sigverify.VerifiedBlock, len(entries))
	for i, e := range entries {
		if vbs[i], err = f.VerifyBlock(ctx, e.Block); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.ApplyBlocks(ctx, vbs, events.Sync, "peer-a")
	if err != nil || len(got) != len(vbs) {
		t.Fatalf("ApplyBlocks: %d entries, %v", len(got), err)
	}
	if v := f.Chain().View(); v.Head != head {
		t.Fatalf("follower head %d, producer head %d", v.Head.Height, head.Height)
	}
	if a, b := tn.balance(tn.users[1].Address()), mustAccount(t, f, tn.users[1]); a != b {
		t.Fatalf("follower balance %d, producer %d", b, a)
	}
	ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
	defer ecancel()
	var height uint64
	for height < head.Height {
		ev, err := sub.Next(ectx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != events.BlockAccepted {
			continue
		}
		if ev.Block.Height != height+1 || ev.Origin != events.Sync || ev.Peer != "peer-a" {
			t.Fatalf("block event at %d after %d, origin %v peer %q", ev.Block.Height, height, ev.Origin, ev.Peer)
		}
		height = ev.Block.Height
	}
	// Applying them again changes nothing and fails nothing.
	if again, err := f.ApplyBlocks(ctx, vbs, events.Sync, "peer-a"); err != nil || len(again) != 0 {
		t.Fatalf("ApplyBlocks of known blocks: %d, %v", len(again), err)
	}
}

func mustAccount(t *testing.T, n *Node, k interface{ Address() koinos.Address }) uint64 {
	t.Helper()
	a, err := n.Chain().View().Account(k.Address())
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// The durable log of a running node holds, in order and numbered without
// gaps, the admission of a submitted transaction (with Config.LogMempool),
// the block that includes it and its irreversibility; the indexer follows
// it to the end; and after a restart the numbering goes on.
func TestDurableEventLog(t *testing.T) {
	tn := newTestNet(t, 2, 50*time.Millisecond)
	tn.stop()
	tn.logMempool = true
	tn.start()
	st := tn.n.Store()
	from := st.LogNext()
	tx := tn.transfer(0, tn.users[1].Address(), 5, 1)
	if _, err := tn.submit(tx); err != nil {
		t.Fatal(err)
	}
	height := tn.waitTx(tx.Id)
	var admitted, accepted, irreversible bool
	deadline := time.Now().Add(10 * time.Second)
	for next := from; !irreversible || !accepted; {
		if time.Now().After(deadline) {
			t.Fatalf("log: admitted %v, accepted %v, irreversible %v", admitted, accepted, irreversible)
		}
		recs, err := st.ReadLog(next, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		for _, r := range recs {
			if r.Seq != next {
				t.Fatalf("record at %d, want %d", r.Seq, next)
			}
			next = r.Next()
			switch {
			case r.Kind == store.LogMempoolAccepted:
				for _, m := range r.Mempool {
					var got protocol.Transaction
					if err := got.UnmarshalVT(m.Transaction); err != nil {
						t.Fatal(err)
					}
					if bytes.Equal(got.Id, tx.Id) {
						var rc protocol.TransactionReceipt
						if err := rc.UnmarshalVT(m.Receipt); err != nil || !bytes.Equal(rc.Id, tx.Id) {
							t.Fatalf("receipt of the admission: %v %v", rc.Id, err)
						}
						admitted = true
					}
				}
			case r.Kind == store.LogBlockAccepted && r.Block.Height == height:
				if !admitted {
					t.Fatal("the block's record before the admission's")
				}
				if !r.Live {
					t.Error("a block produced now is not live")
				}
				accepted = true
			case r.Kind == store.LogIrreversible && r.Block.Height == height:
				// With one producer a block is irreversible in the step
				// that accepts it, and its irreversible record comes
				// first, as Koinos broadcasts them.
				if !admitted {
					t.Fatal("irreversible before the admission")
				}
				irreversible = true
			}
		}
	}
	for {
		if recs, _ := st.IndexLag(); recs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the indexer did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tn.stop()
	next := st.LogNext()
	tn.start()
	if got := tn.n.Store().LogNext(); got < next {
		t.Fatalf("after restart the log ends at %d, before %d", got, next)
	}
	if c := tn.n.Store().LogStatus().Consumers[store.IndexConsumer]; c < next {
		t.Fatalf("after a graceful stop the indexer's cursor is %d, the log ended at %d", c, next)
	}
}
