package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/valyala/fastjson"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/netio/p2p"
)

// MaxNodes bounds a network of the bench's own nodes.
const MaxNodes = 16

// NetProducerKeys returns the producers of an n-node network: node i
// signs with key i. Key 0 is ProducerKey(seed), so a one-node network is
// the bench's usual chain; key i > 0 is derived from
// "ember-bench/producer/<seed>/<i>".
func NetProducerKeys(seed string, n int) []keys.Signer {
	out := make([]keys.Signer, n)
	for i := range out {
		if i == 0 {
			out[i] = ProducerKey(seed)
		} else {
			out[i] = deriveKey(keys.SchemeEd25519, "ember-bench/producer/"+seed+"/"+strconv.Itoa(i))
		}
	}
	return out
}

// netGenesis builds a chain with every producer in the schedule, funding
// every account with AccountFunds.
func netGenesis(producers []keys.Signer, accounts []keys.Signer, interval time.Duration, now time.Time) (*genesis.Genesis, error) {
	if interval < 10*time.Millisecond || interval%time.Millisecond != 0 {
		return nil, fmt.Errorf("bench: the block interval must be a whole number of milliseconds, at least 10ms; got %v", interval)
	}
	bal := make(map[koinos.Address]uint64, len(accounts))
	for _, a := range accounts {
		bal[a.Address()] = AccountFunds
	}
	addrs := make([]koinos.Address, len(producers))
	for i, p := range producers {
		addrs[i] = p.Address()
	}
	g, err := genesis.Dev(genesis.DevOptions{
		ChainName:       "ember-bench",
		Producers:       addrs,
		Balances:        bal,
		BlockIntervalMs: uint64(interval.Milliseconds()),
		Now:             now,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: genesis: %w", err)
	}
	return g, nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago (held together, so they differ, then released for the nodes). Another
// process may take one in between; the node then fails to start and says
// so.
func freePorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, n)
	for i := range out {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("bench: no free loopback port: %w", err)
		}
		lns = append(lns, ln)
		out[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

// p2pIdentities makes n fresh identity keys, their peer addresses on the
// given loopback ports (/ip4/127.0.0.1/tcp/PORT/p2p/<id>).
func p2pIdentities(ports []int) ([]crypto.PrivKey, []string, error) {
	ids := make([]crypto.PrivKey, len(ports))
	addrs := make([]string, len(ports))
	for i, port := range ports {
		k, err := p2p.NewIdentity()
		if err != nil {
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		pid, err := p2p.PeerID(k)
		if err != nil {
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		ids[i], addrs[i] = k, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, pid)
	}
	return ids, addrs, nil
}

// indexedLogPath is node i's log file: node.log → node-<i>.log.
func indexedLogPath(path string, i int) string {
	if path == "" {
		return ""
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + strconv.Itoa(i) + ext
}

// startNodes starts o.Nodes nodes funding ks. One node runs without a
// network. Several form a full mesh on loopback: identity keys and ports
// are chosen first so that every node's static peers are all the others,
// and the network is ready once every node has shaken hands with all the
// others and a block produced after that has reached every node by gossip.
func startNodes(ctx context.Context, o Options, ks []keys.Signer, lim nodeLimits) ([]*target, string, error) {
	prods := NetProducerKeys(o.Seed, o.Nodes)
	g, err := netGenesis(prods, genesisAccounts(ks, o.Workload, o.Seed), o.BlockInterval, time.Now())
	if err != nil {
		return nil, "", err
	}
	if o.Nodes == 1 {
		t, err := startNode(ctx, o.Node, nodeSpec{name: "the node", genesis: g, producer: prods[0], lim: lim})
		if err != nil {
			return nil, "", err
		}
		return []*target{t}, "", nil
	}
	ports, err := freePorts(o.Nodes)
	if err != nil {
		return nil, "", err
	}
	ids, addrs, err := p2pIdentities(ports)
	if err != nil {
		return nil, "", err
	}
	tgts := make([]*target, o.Nodes)
	errs := make([]error, o.Nodes)
	var wg sync.WaitGroup
	for i := range tgts {
		spec := nodeSpec{name: fmt.Sprintf("node %d", i), genesis: g, producer: prods[i], identity: ids[i], p2pPort: ports[i], lim: lim,
			logPath: indexedLogPath(o.Node.LogPath, i)}
		for j, a := range addrs {
			if j != i {
				spec.peers = append(spec.peers, a)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tgts[i], errs[i] = startNode(ctx, o.Node, spec)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			closeTargets(tgts)
			return nil, "", err
		}
	}
	note, err := waitMesh(ctx, tgts, o.BlockInterval)
	if err != nil {
		closeTargets(tgts)
		return nil, "", err
	}
	return tgts, note, nil
}

// handshakeGrace is how long waitMesh waits for every handshake before it
// settles for gossip that reaches every node.
const handshakeGrace = 15 * time.Second

// waitMesh waits until every node has shaken hands with every other (its
// "peer connected" lines), then until a block produced after that has been
// accepted live by every node but its producer: gossip works end to end.
// If some handshake is still missing after handshakeGrace while every node
// has at least one peer, a block that reaches every node by gossip is
// enough, and the note says which nodes lack peers. At most a minute plus
// ten block intervals.
func waitMesh(ctx context.Context, tgts []*target, interval time.Duration) (note string, err error) {
	start := time.Now()
	deadline := start.Add(time.Minute + 10*interval)
	var meshAt time.Time
	for {
		if meshAt.IsZero() {
			full, some := true, true
			for _, t := range tgts {
				n, _ := t.peerCount()
				full = full && n >= len(tgts)-1
				some = some && n > 0
			}
			switch {
			case full:
				meshAt = time.Now()
			case some && time.Since(start) > handshakeGrace:
				meshAt = time.Now()
				note = "not every handshake was seen (" + peerCounts(tgts) + "); the runs began once a block reached every node by gossip"
			}
		} else if gossipedSince(tgts, meshAt) {
			return note, nil
		}
		for _, t := range tgts {
			if err := t.alive(); err != nil {
				return "", err
			}
		}
		if time.Now().After(deadline) {
			what := "every node to shake hands with every other"
			if !meshAt.IsZero() {
				what = "a block to reach every node by gossip"
			}
			return "", fmt.Errorf("bench: the network did not form: timed out waiting for %s (%s)\n%s", what, peerCounts(tgts), tgts[0].logTail())
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// peerCounts says how many peers each node has shaken hands with.
func peerCounts(tgts []*target) string {
	parts := make([]string, len(tgts))
	for i, t := range tgts {
		n, _ := t.peerCount()
		parts[i] = fmt.Sprintf("node %d: %d of %d peers", i, n, len(tgts)-1)
	}
	return strings.Join(parts, ", ")
}

// gossipedSince reports whether some block produced after since was
// accepted live by every other node.
func gossipedSince(tgts []*target, since time.Time) bool {
	evs := make([][]blockEvent, len(tgts))
	for i, t := range tgts {
		evs[i] = t.blockEvents()
	}
	for p, pe := range evs {
		for _, e := range pe {
			if !e.produced || e.at.Before(since) {
				continue
			}
			all := true
			for q, qe := range evs {
				if q != p && !acceptedLive(qe, e.id) {
					all = false
					break
				}
			}
			if all {
				return true
			}
		}
	}
	return false
}

func acceptedLive(evs []blockEvent, id string) bool {
	for _, e := range evs {
		if !e.produced && e.id == id {
			return true
		}
	}
	return false
}

// NodeHead is what one node of a network says of its chain.
type NodeHead struct {
	Node   int    `json:"node"`
	Height uint64 `json:"height"`
	ID     string `json:"id"`
	LIB    uint64 `json:"lib"`
	Err    string `json:"err,omitempty"`
}

// Heads asks every node of the session for its head and last irreversible
// block: after a run, whether the nodes agree.
func (s *Session) Heads() []NodeHead {
	out := make([]NodeHead, len(s.conns))
	var p fastjson.Parser
	for i, c := range s.conns {
		out[i].Node = i
		hi, err := readHead(c, &p, nil)
		if err != nil {
			out[i].Err = err.Error()
			continue
		}
		out[i].Height, out[i].LIB, out[i].ID = hi.height, hi.lib, fmt.Sprintf("0x%x", hi.id.Multihash())
	}
	return out
}

// headsAgree reports whether every node has the same last irreversible
// block height, and heads within one block of each other.
func headsAgree(hs []NodeHead) bool {
	if len(hs) == 0 {
		return true
	}
	lo, hi := hs[0].Height, hs[0].Height
	for _, h := range hs {
		if h.Err != "" || h.LIB != hs[0].LIB {
			return false
		}
		lo, hi = min(lo, h.Height), max(hi, h.Height)
	}
	return hi-lo <= 1
}

// Propagation is how the blocks produced during a run reached the other
// nodes of a network, from the nodes' logs: a block's time on its producer
// is its "produced block" line (written once the block is stored and handed
// to the network), on another node its "accepted block" line (written once
// received live, verified, applied and stored). All nodes run on this
// machine, so their clocks are one.
type Propagation struct {
	// Blocks produced between the first submission and the end of the
	// drain (every node's, forks included).
	Blocks int `json:"blocks"`
	// Live are the blocks every other node accepted live: the sample of
	// the distributions below.
	Live int `json:"live"`
	// NotLive are blocks some other node never accepted live: it got them
	// by sync, or not at all (a fork it never saw).
	NotLive int `json:"not_live"`
	// OffChain are produced blocks that are not on the followed node's
	// chain at the end (forks that lost).
	OffChain int `json:"off_chain"`
	// Max is, per block, the delay to the last other node to accept it
	// (ms); Each, per block and other node.
	Max  Dist `json:"max"`
	Each Dist `json:"each"`
	// P99OfInterval is Max.P99 over the block interval.
	P99OfInterval float64 `json:"p99_of_interval"`
	// MissedPerNode[i] counts the other nodes' blocks node i did not
	// accept live.
	MissedPerNode []int `json:"missed_per_node"`
	// Handshakes[i] is how many peers node i has shaken hands with by the
	// end of the run (its distinct "peer connected" lines); Note says
	// when the run began without every handshake.
	Handshakes []int  `json:"handshakes"`
	Note       string `json:"note,omitempty"`
}

// propagation computes a run's Propagation from the nodes' block events
// between t0 and end, once the follower has stopped.
func propagation(tgts []*target, fol *follower, t0, end time.Time, intervalMs int64) *Propagation {
	evs := make([][]blockEvent, len(tgts))
	accepted := make([]map[string]time.Time, len(tgts))
	for i, t := range tgts {
		evs[i] = t.blockEvents()
		accepted[i] = map[string]time.Time{}
		for _, e := range evs[i] {
			if _, ok := accepted[i][e.id]; !e.produced && !ok {
				accepted[i][e.id] = e.at
			}
		}
	}
	onChain := map[uint64]string{}
	for _, b := range fol.blocks {
		onChain[b.Height] = fmt.Sprintf("0x%x", b.ID.Multihash())
	}
	pr := &Propagation{MissedPerNode: make([]int, len(tgts))}
	var maxMs, eachMs []float64
	for p, pe := range evs {
		for _, e := range pe {
			if !e.produced || e.at.Before(t0) || e.at.After(end) {
				continue
			}
			pr.Blocks++
			if id, ok := onChain[e.height]; ok && id != e.id {
				pr.OffChain++
			}
			worst, live := math.Inf(-1), true
			for q := range tgts {
				if q == p {
					continue
				}
				at, ok := accepted[q][e.id]
				if !ok {
					live = false
					pr.MissedPerNode[q]++
					continue
				}
				d := float64(at.Sub(e.at).Microseconds()) / 1000
				eachMs = append(eachMs, d)
				worst = max(worst, d)
			}
			if live {
				pr.Live++
				maxMs = append(maxMs, worst)
			} else {
				pr.NotLive++
			}
		}
	}
	pr.Max, pr.Each = Summarize(maxMs), Summarize(eachMs)
	if intervalMs > 0 {
		pr.P99OfInterval = round3(pr.Max.P99 / float64(intervalMs))
	}
	return pr
}
