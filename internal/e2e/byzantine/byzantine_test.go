package byzantine

import (
	"strings"
	"testing"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
)

func TestParseActs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		err  string
	}{
		{"", len(Acts), ""},
		{"all", len(Acts), ""},
		{"tx-flood", 1, ""},
		{"lying-sync, unserved-head", 2, ""},
		{"tx-flood,shout", 0, `unknown act "shout"`},
	} {
		got, err := ParseActs(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %v, want an error with %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != c.want {
			t.Errorf("%q: got %v %v, want %d acts", c.in, got, err, c.want)
		}
	}
}

// Each block act forges the fault it is named for, and only that one:
// the bad signature and the bad merkle root fail verification with their
// own error, the wrong parent verifies and has a height that does not
// follow its parent's.
func TestForgedBlocks(t *testing.T) {
	prod := keys.Ed25519FromSeed(make([]byte, 32))
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{prod.Address()}, BlockIntervalMs: 400})
	if err != nil {
		t.Fatal(err)
	}
	head := &p2ppb.Status{Head: &p2ppb.BlockRef{Id: koinos.Sum256([]byte("head")).Multihash(), Height: 10},
		HeadTime: g.Params().GenesisTimeMs + 10*400}
	for _, c := range []struct{ act, err string }{
		{ActBadSignature, "not by its signer"},
		{ActBadMerkle, "merkle"},
		{ActWrongParent, ""},
	} {
		a := newActor(&identity{net: &devnet{g: g}}, Config{}, c.act)
		b, err := a.forge(head, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sigverify.VerifyBlock(b, nil, 0)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v, want a block that verifies", c.act, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want an error with %q", c.act, err, c.err)
		}
		if c.act == ActWrongParent && b.Header.Height == head.Head.Height+1 {
			t.Errorf("%s: height %d follows the parent's", c.act, b.Header.Height)
		}
		if c.act != ActWrongParent && b.Header.Height != head.Head.Height+1 {
			t.Errorf("%s: height %d, want %d", c.act, b.Header.Height, head.Head.Height+1)
		}
	}
}
