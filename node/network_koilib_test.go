package node

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// TestKoilibAcrossNodes: koilib, unmodified, sends a transfer to one node
// of a four-producer network and waits for it on another
// (testdata/koilib/network.js).
func TestKoilibAcrossNodes(t *testing.T) {
	requireKoilib(t)
	c := newCluster(t, 4, 2, 200*time.Millisecond)
	for i := 0; i < 4; i++ {
		c.add(i)
	}
	wallet := c.users[1] // secp256k1: what koilib signs with
	if wallet.Scheme() != keys.SchemeSecp256k1 {
		t.Fatal("user 1 must be a secp256k1 key")
	}
	waitFor(t, 30*time.Second, "the network to run", func() bool { return c.minLIB() >= 2 })
	to := keys.Ed25519FromSeed(seed("koilib-network-recipient")).Address()
	send, wait := c.nodes[0].n.RPCAddr(), c.nodes[3].n.RPCAddr()
	out := runKoilib(t, "network.js", "http://"+send+"/", "http://"+wait+"/", wallet.String(), c.g.TokenID().String(), to.String())
	var got struct {
		TxID           string `json:"txId"`
		BlockNumber    int    `json:"blockNumber"`
		BlockHasTx     bool   `json:"blockHasTx"`
		ToBefore       string `json:"toBefore"`
		ToAfter        string `json:"toAfter"`
		NonceOnWatcher int    `json:"nonceOnWatcher"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("koilib output %q: %v", out, err)
	}
	if got.BlockNumber == 0 || !got.BlockHasTx || got.ToBefore != "0" || got.ToAfter != "777" || got.NonceOnWatcher != 1 {
		t.Fatalf("koilib saw %+v", got)
	}
}
