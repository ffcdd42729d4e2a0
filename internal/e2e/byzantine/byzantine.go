package byzantine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/genesis"
)

// The acts, in the order Run plays them by default.
const (
	ActBadSignature = "block-bad-signature" // blocks signed by another key than their signer's
	ActBadMerkle    = "block-bad-merkle"    // blocks whose transaction merkle root is not their transactions'
	ActWrongParent  = "block-wrong-parent"  // blocks on the head at a height that does not follow it
	ActTxFlood      = "tx-flood"            // honest transactions re-gossiped many times, then batches with invalid signatures
	ActLoweredHead  = "lowered-head"        // a head far above the network's, then lowered, again and again (CometBFT's blocksync stall)
	ActUnservedHead = "unserved-head"       // a head far above the network's that it never serves: no sync protocol at all
	ActLyingSync    = "lying-sync"          // a head above the network's; blocks responses that do not link, then blocks that do not verify
)

// Acts lists every act.
var Acts = []string{ActBadSignature, ActBadMerkle, ActWrongParent, ActTxFlood, ActLoweredHead, ActUnservedHead, ActLyingSync}

// Config configures a byzantine run.
type Config struct {
	// Devnet is the devnet's directory (ember devnet --create-only): its
	// devnet.json names the honest nodes, node0/genesis.json the chain.
	Devnet string
	Acts   []string // nil: all, in the order of Acts
	// ActTimeout bounds one act: how long it misbehaves waiting to be
	// dropped by every honest node [30 s].
	ActTimeout time.Duration
	// Duplicates is how many times the flood re-gossips each honest
	// transaction batch it hears, and FloodFor how long [50, 5 s].
	Duplicates int
	FloodFor   time.Duration
	Logger     *slog.Logger
}

// ActReport is what one act did, for the judge.
type ActReport struct {
	Act  string `json:"act"`
	Peer string `json:"peer"` // its libp2p peer id
	// Sent counts its misbehaving messages: blocks, transaction batches,
	// lying statuses, lying sync responses; Duplicates the honest
	// batches it gossiped again.
	Sent       int64 `json:"sent"`
	Duplicates int64 `json:"duplicates,omitempty"`
	// DroppedBy are the honest nodes that closed its connections, and
	// RefusedBy those that refused it a new one afterwards.
	DroppedBy []int     `json:"dropped_by"`
	RefusedBy []int     `json:"refused_by"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Err       string    `json:"error,omitempty"`
}

// Report is a whole byzantine run.
type Report struct {
	Acts []ActReport `json:"acts"`
}

// devnet is what the acts know of the honest network.
type devnet struct {
	peers []peer.AddrInfo
	g     *genesis.Genesis
}

func (d *devnet) nodeOf(p peer.ID) int {
	for i, ai := range d.peers {
		if ai.ID == p {
			return i
		}
	}
	return -1
}

func readDevnet(dir string) (*devnet, error) {
	b, err := os.ReadFile(filepath.Join(dir, "devnet.json"))
	if err != nil {
		return nil, fmt.Errorf("byzantine: %w", err)
	}
	var m struct {
		Nodes []struct {
			Name        string `json:"name"`
			PeerAddress string `json:"peer_address"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m.Nodes) == 0 {
		return nil, fmt.Errorf("byzantine: devnet.json names no nodes (%v)", err)
	}
	d := &devnet{}
	for _, n := range m.Nodes {
		ai, err := peer.AddrInfoFromString(n.PeerAddress)
		if err != nil {
			return nil, fmt.Errorf("byzantine: devnet.json: %s: %w", n.Name, err)
		}
		d.peers = append(d.peers, *ai)
	}
	gb, err := os.ReadFile(filepath.Join(dir, m.Nodes[0].Name, "genesis.json"))
	if err != nil {
		return nil, fmt.Errorf("byzantine: %w", err)
	}
	if d.g, err = genesis.Parse(gb); err != nil {
		return nil, fmt.Errorf("byzantine: genesis: %w", err)
	}
	return d, nil
}

// ParseActs reads a comma-separated list of acts ("" or "all": every one).
func ParseActs(s string) ([]string, error) {
	if s == "" || s == "all" {
		return slices.Clone(Acts), nil
	}
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		if !slices.Contains(Acts, a) {
			return nil, fmt.Errorf("byzantine: unknown act %q (one of %s)", a, strings.Join(Acts, ", "))
		}
		out = append(out, a)
	}
	return out, nil
}

// Run plays the acts one after another, each as a new peer (a fresh
// libp2p identity: the honest nodes ban by peer id, and on loopback not by
// address), until every honest node has dropped it or ActTimeout passed.
// An act that could not start (no handshake) is an error; one that was
// not dropped is reported (DroppedBy) for the judge to decide.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.ActTimeout <= 0 {
		cfg.ActTimeout = 30 * time.Second
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = 50
	}
	if cfg.FloodFor <= 0 {
		cfg.FloodFor = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	acts := cfg.Acts
	if len(acts) == 0 {
		acts = Acts
	}
	d, err := readDevnet(cfg.Devnet)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	var errs []error
	for _, a := range acts {
		r := runAct(ctx, cfg, d, a)
		rep.Acts = append(rep.Acts, r)
		if r.Err != "" {
			errs = append(errs, fmt.Errorf("%s: %s", a, r.Err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return rep, errors.Join(errs...)
}

func runAct(ctx context.Context, cfg Config, d *devnet, act string) ActReport {
	r := ActReport{Act: act, Start: time.Now()}
	actCtx, cancel := context.WithTimeout(ctx, cfg.ActTimeout)
	defer cancel()
	id, err := newIdentity(actCtx, d, cfg.Logger.With("act", act))
	if err != nil {
		r.Err, r.End = err.Error(), time.Now()
		return r
	}
	defer id.close()
	r.Peer = id.h.ID().String()
	id.log.Info("byzantine act", "peer", r.Peer)
	a := newActor(id, cfg, act)
	err = a.play(actCtx)
	r.Sent, r.Duplicates = id.sent.Load(), a.dups.Load()
	r.DroppedBy = id.droppedBy()
	// Asked after the act: a node that banned it refuses it now.
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	r.RefusedBy = id.refusedBy(rctx)
	rcancel()
	r.End = time.Now()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		r.Err = err.Error()
	}
	id.log.Info("byzantine act done", "sent", r.Sent, "duplicates", r.Duplicates, "dropped_by", r.DroppedBy, "refused_by", r.RefusedBy, "took", r.End.Sub(r.Start).Round(time.Millisecond))
	return r
}
