package rpcgw

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/emberchain/ember/proto/kjson"
	blockstorepb "github.com/emberchain/ember/proto/koinos/block_store"
	"github.com/emberchain/ember/proto/koinos/protocol"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"google.golang.org/protobuf/proto"
)

func TestBodyPool(t *testing.T) {
	const mb = 1 << 20
	p := &bodyPool{max: 8 * mb}
	steps := []struct {
		name     string
		do       func() int // returns the capacity got, or -1 for a put
		wantCap  int
		wantHeld int
	}{
		{"a first large answer gets its class", func() int { return cap(p.get(3 * mb)) }, 4 * mb, 0},
		{"put it back", func() int { p.put(make([]byte, 0, 4*mb)); return -1 }, -1, 4 * mb},
		{"a connection-sized buffer is not kept", func() int { p.put(make([]byte, 0, keptBodyBuffer)); return -1 }, -1, 4 * mb},
		{"one larger than the pool is not kept", func() int { p.put(make([]byte, 0, 16*mb)); return -1 }, -1, 4 * mb},
		{"a second fits beside it", func() int { p.put(make([]byte, 0, 2*mb)); return -1 }, -1, 6 * mb},
		{"the smallest that fits is reused", func() int { return cap(p.get(mb + 1)) }, 2 * mb, 4 * mb},
		{"put the 2 MB back", func() int { p.put(make([]byte, 0, 2*mb)); return -1 }, -1, 6 * mb},
		{"room is made by dropping the smallest", func() int { p.put(make([]byte, 0, 4*mb)); return -1 }, -1, 8 * mb},
		{"too big for any: a new buffer of its class", func() int { return cap(p.get(5 * mb)) }, 8 * mb, 8 * mb},
		{"the 4 MB ones are reused", func() int { return cap(p.get(4 * mb)) }, 4 * mb, 4 * mb},
	}
	for _, s := range steps {
		got := s.do()
		if got != s.wantCap {
			t.Fatalf("%s: capacity %d, want %d", s.name, got, s.wantCap)
		}
		if h := p.heldBytes(); h != s.wantHeld {
			t.Fatalf("%s: the pool holds %d bytes, want %d", s.name, h, s.wantHeld)
		}
	}
}

// TestBodyPoolReleasesIdle: a buffer not taken again within idle is let
// go, on the next put or by the pool's timer, while buffers in use stay.
func TestBodyPoolReleasesIdle(t *testing.T) {
	const mb = 1 << 20
	now := time.Unix(1_700_000_000, 0)
	// idle is long on the real clock, so only the steps' releases (on
	// put, on the fake clock) run here; the timer is the next test's.
	p := &bodyPool{max: 64 * mb, idle: time.Hour, now: func() time.Time { return now }}
	defer p.close()
	steps := []struct {
		name     string
		after    time.Duration // the fake clock moves this far first
		do       func()
		wantHeld int
	}{
		{"a 16 MiB answer's buffer is kept", 0, func() { p.put(p.get(15 * mb)) }, 16 * mb},
		{"one rare 32 MiB answer beside it", time.Minute, func() { p.put(p.get(20 * mb)) }, 48 * mb},
		{"16 MiB answers take the 16 MiB one again and again", 30 * time.Minute, func() { p.put(p.get(15 * mb)) }, 48 * mb},
		{"an hour after the 32 MiB answer, it goes on the next put", 30*time.Minute + time.Second, func() { p.put(p.get(15 * mb)) }, 16 * mb},
		{"a buffer taken and put back is fresh again", 59 * time.Minute, func() { p.put(p.get(15 * mb)) }, 16 * mb},
		{"a buffer idle for exactly idle goes", time.Hour, func() { p.put(make([]byte, 0, 2*mb)) }, 2 * mb},
		{"releaseIdle (the timer's work) lets nothing fresh go", time.Hour - time.Second, p.releaseIdle, 2 * mb},
		{"and everything idle", time.Second, p.releaseIdle, 0},
	}
	for _, s := range steps {
		now = now.Add(s.after)
		s.do()
		if h := p.heldBytes(); h != s.wantHeld {
			t.Fatalf("%s: the pool holds %d bytes, want %d", s.name, h, s.wantHeld)
		}
	}
}

// TestBodyPoolTimerReleases: with no further answer to trigger it, the
// pool's timer lets idle buffers go, re-arming for a buffer put later;
// after close nothing is kept.
func TestBodyPoolTimerReleases(t *testing.T) {
	const mb = 1 << 20
	p := &bodyPool{max: 64 * mb, idle: 50 * time.Millisecond}
	defer p.close()
	waitEmpty := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for p.heldBytes() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the pool still holds %d bytes 10 s later", what, p.heldBytes())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	p.put(make([]byte, 0, 32*mb))
	p.put(make([]byte, 0, 16*mb))
	if h := p.heldBytes(); h != 48*mb {
		t.Fatalf("the pool holds %d bytes, want both buffers", h)
	}
	waitEmpty("two buffers put and never taken")
	p.put(make([]byte, 0, 4*mb))
	if h := p.heldBytes(); h != 4*mb {
		t.Fatalf("the pool holds %d bytes after a put, want 4 MiB", h)
	}
	waitEmpty("a buffer put after the timer ran down")

	p.put(make([]byte, 0, 4*mb))
	p.close()
	if h := p.heldBytes(); h != 0 {
		t.Fatalf("after close the pool holds %d bytes", h)
	}
	p.put(make([]byte, 0, 4*mb))
	if h := p.heldBytes(); h != 0 {
		t.Fatalf("a put after close was kept: %d bytes", h)
	}
}

// transferBlock is a block item of n transfers shaped like the chain's:
// ids, addresses, a signature, a receipt with one transfer event each.
func transferBlock(n int) *blockstorerpc.GetBlocksByHeightResponse {
	id := func(b byte) []byte { return append([]byte{0x12, 0x20}, bytes.Repeat([]byte{b}, 32)...) }
	addr := func(b byte) []byte { return append([]byte{0}, bytes.Repeat([]byte{b}, 24)...) }
	blk := &protocol.Block{Id: id(1), Header: &protocol.BlockHeader{Previous: id(2), Height: 12345, Timestamp: 1700000000000,
		PreviousStateMerkleRoot: id(3), TransactionMerkleRoot: id(4), Signer: addr(5)}, Signature: bytes.Repeat([]byte{6}, 65)}
	rec := &protocol.BlockReceipt{Id: id(1), Height: 12345, StateMerkleRoot: id(7)}
	for i := range n {
		b := byte(i)
		blk.Transactions = append(blk.Transactions, &protocol.Transaction{
			Id: id(b),
			Header: &protocol.TransactionHeader{ChainId: id(8), RcLimit: 1000000, Nonce: []byte{8, byte(i), 1},
				OperationMerkleRoot: id(b + 1), Payer: addr(b)},
			Operations: []*protocol.Operation{{Op: &protocol.Operation_CallContract{CallContract: &protocol.CallContractOperation{
				ContractId: addr(9), EntryPoint: 0x27f576ca, Args: append(append(addr(b), addr(b+1)...), 0x18, 0x64)}}}},
			Signatures: [][]byte{bytes.Repeat([]byte{b}, 65)},
		})
		rec.TransactionReceipts = append(rec.TransactionReceipts, &protocol.TransactionReceipt{
			Id: id(b), Payer: addr(b), MaxPayerRc: 1000000, RcLimit: 1000000, RcUsed: 420000, NetworkBandwidthUsed: 310, ComputeBandwidthUsed: 95000,
			Events: []*protocol.EventData{{Sequence: 1, Source: addr(9), Name: "koinos.contracts.token.transfer_event",
				Data: append(addr(b), addr(b+1)...), Impacted: [][]byte{addr(b + 1), addr(b)}}},
		})
	}
	return &blockstorerpc.GetBlocksByHeightResponse{BlockItems: []*blockstorepb.BlockItem{{BlockId: id(1), BlockHeight: 12345, Block: blk, Receipt: rec}}}
}

// TestRoomForCoversABlock: the estimate leaves room for a block read's
// JSON, so the encoder does not grow the pooled buffer (which would
// allocate the doubling the pool is there to avoid).
func TestRoomForCoversABlock(t *testing.T) {
	p := &bodyPool{max: largeBodiesHeld}
	for _, n := range []int{1, 500, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			msg := transferBlock(n)
			dst := p.roomFor([]byte(`{"jsonrpc":"2.0","id":1,"result":`), msg)
			before := cap(dst)
			out, err := kjson.Append(dst, msg)
			if err != nil {
				t.Fatal(err)
			}
			pooled := before >= largeBodyClass
			if big := len(out) > keptBodyBuffer; big != pooled {
				t.Errorf("%d transfers: %d bytes of JSON; pooled buffer = %v", n, len(out), pooled)
			}
			if pooled && cap(out) != before {
				t.Errorf("%d transfers: %d bytes of JSON outgrew the %d-byte buffer the estimate gave", n, len(out), before)
			}
			t.Logf("%d transfers: JSON %d bytes, %.2f x the protobuf size", n, len(out), float64(len(out))/float64(proto.Size(msg)))
		})
	}
}

// TestLargeAnswersReturnToThePool: on a real server, a large answer's
// buffer goes back to the pool once written, and answers served from
// reused buffers arrive whole, never with an earlier answer's bytes.
func TestLargeAnswersReturnToThePool(t *testing.T) {
	s, url := startServer(t, Config{}, &fakeBackend{})
	sizes := []int{2 << 20, 600 << 10, 1 << 20, 10, 2<<20 + 1000, 300 << 10}
	for i, n := range sizes {
		arg := bytes.Repeat([]byte{byte('a' + i)}, n)
		res := &chainrpc.ReadContractResponse{Result: arg}
		enc, _ := kjson.Append(nil, res)
		r := call(t, url, req(fmt.Sprint(i), "chain.read_contract", `{"args":"`+string(enc[len(`{"result":"`):len(enc)-2])+`"}`))
		if r.Error != nil {
			t.Fatalf("call %d (%d bytes): %+v", i, n, r.Error)
		}
		if !bytes.Contains(r.Result, enc[len(`{"result":"`):len(enc)-2]) {
			t.Fatalf("call %d: the %d-byte result is not the one asked for", i, n)
		}
		if n > keptBodyBuffer {
			// The buffer that held the answer (base64: 4/3 of n) is back;
			// the method's first large answer was grown, the rest sized.
			if h := s.bodies.heldBytes(); h < n*4/3 || h > largeBodiesHeld {
				t.Fatalf("after a %d-byte answer the pool holds %d bytes; want its buffer back, at most %d in all", n, h, largeBodiesHeld)
			}
		}
	}
}

// BenchmarkBlockAnswer encodes a 5,000-transfer block read (~5.7 MB of
// JSON) as the handler does: "grown" from a connection's 256 KiB buffer by
// doubling (before c37dd3b), "pooled" into a buffer from the pool, given
// back after each answer. B/op is the point: the doubling chain against
// none.
func BenchmarkBlockAnswer(b *testing.B) {
	msg := transferBlock(5000)
	prefix := []byte(`{"jsonrpc":"2.0","id":1,"result":`)
	b.Run("grown", func(b *testing.B) {
		conn := make([]byte, 0, keptBodyBuffer)
		b.ReportAllocs()
		for b.Loop() {
			out, err := kjson.Append(append(conn[:0], prefix...), msg)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(out)))
		}
	})
	b.Run("pooled", func(b *testing.B) {
		p := &bodyPool{max: largeBodiesHeld, idle: largeBodyIdle}
		defer p.close()
		conn := make([]byte, 0, keptBodyBuffer)
		b.ReportAllocs()
		for b.Loop() {
			dst := p.roomFor(append(conn[:0], prefix...), msg)
			out, err := kjson.Append(dst, msg)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(out)))
			p.put(out)
		}
	})
}
