package producer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/store"
)

type noTxs struct{}

func (noTxs) Best(int) []*mempool.Entry { return nil }

func openChain(t *testing.T, dir string, g *genesis.Genesis) (*chain.Chain, *store.Store) {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, r, err := chain.Open(chain.Config{Genesis: g, Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(r); err != nil {
		t.Fatal(err)
	}
	c.Advance(r)
	return c, st
}

// TestCrashBetweenSigningAndBroadcast: the producer signs a block, the node
// dies before the block is stored or sent, and restarts. It must not sign
// another block for that slot.
func TestCrashBetweenSigningAndBroadcast(t *testing.T) {
	key := keys.Ed25519FromSeed(make([]byte, 32))
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{key.Address()}, Now: time.UnixMilli(1_700_000_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	guardPath := filepath.Join(dir, "sign-guard")
	c, st := openChain(t, filepath.Join(dir, "store"), g)
	guard, err := OpenFileGuard(guardPath)
	if err != nil {
		t.Fatal(err)
	}
	p := New(key, noTxs{}, guard)
	now := g.Params().GenesisTimeMs + 10*g.Params().BlockIntervalMs
	slot, ok := p.NextSlot(c, now)
	if !ok {
		t.Fatal("no slot")
	}
	r, _, err := p.Produce(c, slot, now, Budget{MaxTxs: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Accepted) != 1 {
		t.Fatal("no block")
	}
	// Crash: the signed block was never committed nor broadcast.
	st.Close()

	c, st = openChain(t, filepath.Join(dir, "store"), g)
	defer st.Close()
	if c.Head().Height != 0 {
		t.Fatal("the unstored block survived")
	}
	guard, err = OpenFileGuard(guardPath)
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := guard.Last(); last != slot {
		t.Fatalf("guard remembers slot %d, signed %d", last, slot)
	}
	p = New(key, noTxs{}, guard)
	if next, _ := p.NextSlot(c, now); next <= slot {
		t.Fatalf("after restart the producer would sign slot %d again", next)
	}
	// Even if asked directly, the guard refuses.
	if _, _, err := New(key, noTxs{}, guard).Produce(c, slot, now, Budget{MaxTxs: 100}); err == nil {
		t.Fatal("signed the same slot twice")
	}
	p2 := &Producer{key: key, addr: key.Address(), src: noTxs{}, guard: guard} // a producer that forgot
	if _, _, err := p2.Produce(c, slot, now, Budget{MaxTxs: 100}); !errors.Is(err, ErrSlotSigned) {
		t.Fatalf("guard did not refuse: %v", err)
	}
	// The next slot is fine.
	if _, _, err := p.Produce(c, slot+1, c.SlotTime(slot+1), Budget{MaxTxs: 100}); err != nil {
		t.Fatal(err)
	}
}

func TestGuardRefusesCorruption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sign-guard")
	g, _ := OpenFileGuard(path)
	if err := g.BeforeSign(5, 1); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	b[3] ^= 1
	os.WriteFile(path, b, 0o600)
	if _, err := OpenFileGuard(path); err == nil {
		t.Fatal("corrupt guard accepted")
	}
	os.WriteFile(path, b[:7], 0o600)
	if _, err := OpenFileGuard(path); err == nil {
		t.Fatal("torn guard accepted")
	}
}

// TestGuardWriteFailure: a sign guard that cannot be written refuses the
// signature with a GuardWriteError that keeps the cause, and keeps the
// last record.
func TestGuardWriteFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "guard", "sign-guard")
	g, err := OpenFileGuard(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.BeforeSign(3, 1); err != nil {
		t.Fatal(err)
	}
	// The guard's directory replaced by a file: every write in it fails
	// (ENOTDIR), as every write fails on a full disk (ENOSPC).
	if err := os.RemoveAll(filepath.Join(dir, "guard")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "guard"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = g.BeforeSign(4, 2)
	var gw *GuardWriteError
	if !errors.As(err, &gw) || gw.Slot != 4 || gw.Path != path || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("write failure: %v", err)
	}
	if !strings.Contains(err.Error(), "record slot 4 in the sign guard "+path) {
		t.Fatalf("message: %v", err)
	}
	if last, _ := g.Last(); last != 3 {
		t.Fatalf("after a failed write the guard says slot %d was signed, want 3", last)
	}
}
