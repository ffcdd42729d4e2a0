package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/emberchain/ember/internal/childproc"
	"github.com/emberchain/ember/internal/e2e/byzantine"
)

// The perturbations, applied from outside as an operator (or a fault)
// would: signals to the node processes, and bans on the nodes' admin
// listeners (POST /p2p/ban, /p2p/unban), which close the connection and
// refuse the peer's dials, so a cut link stays cut.

// banFor is how long a cut link's bans last: beyond any scenario, so a
// link comes back only when the timeline heals it.
const banFor = time.Hour

// play runs the scenario's timeline, each step at its time from now.
func (n *network) play(ctx context.Context) error {
	t0 := time.Now()
	n.t0 = t0
	for _, s := range n.sc.Steps {
		if err := sleep(ctx, time.Until(t0.Add(s.At))); err != nil {
			return err
		}
		began := time.Now()
		if err := n.apply(ctx, s); err != nil {
			return fmt.Errorf("e2e: %s at %v: %w", s, s.At, err)
		}
		n.note(began.Sub(t0), s.String(), time.Since(began))
	}
	return nil
}

// note records a played step in the result's timeline.
func (n *network) note(at time.Duration, what string, took time.Duration) {
	line := fmt.Sprintf("%7.1fs  %-34s LIBs then %v", at.Seconds(), what, n.ledger.LIBs())
	if took > 500*time.Millisecond {
		line += fmt.Sprintf(" (took %s)", took.Round(100*time.Millisecond))
	}
	n.mu.Lock()
	n.res.Timeline = append(n.res.Timeline, line)
	n.mu.Unlock()
	n.log.Info("e2e: step", "at", at.Round(100*time.Millisecond), "step", what)
}

func (n *network) apply(ctx context.Context, s Step) error {
	p := n.procs[s.Node]
	switch s.Action {
	case ActKill:
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return err
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			return errors.New("the node did not die within 10 s of SIGKILL")
		}
	case ActRestart:
		return n.restart(ctx, s.Node)
	case ActSkew, ActUnskew:
		// A clock is set at start: the node is stopped (SIGTERM, its
		// pending transactions saved) and started again.
		if err := n.stop(s.Node); err != nil {
			return err
		}
		if s.Action == ActUnskew {
			return n.restart(ctx, s.Node)
		}
		if err := n.restart(ctx, s.Node, "node.clock_offset="+s.Offset.String()); err != nil {
			return err
		}
		n.procs[s.Node].skewed = true
	case ActPause:
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		p.paused = true
	case ActResume:
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			return err
		}
		p.paused = false
	case ActDisconnect:
		for j := range Nodes {
			if j != s.Node {
				if err := n.cutLink(ctx, s.Node, j); err != nil {
					return err
				}
			}
		}
	case ActReconnect:
		for j := range Nodes {
			if j != s.Node {
				if err := n.restoreLink(ctx, s.Node, j); err != nil {
					return err
				}
			}
		}
	case ActPartition:
		for gi, g := range s.Groups {
			for _, other := range s.Groups[gi+1:] {
				for _, a := range g {
					for _, b := range other {
						if err := n.cutLink(ctx, a, b); err != nil {
							return err
						}
					}
				}
			}
		}
	case ActByzantine:
		return n.startByzantine(ctx, s.Acts)
	case ActByzantineDone:
		return n.byzantineDone(ctx)
	case ActHeal:
		for link := range n.cut {
			if err := n.restoreLink(ctx, link[0], link[1]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown action %q", s.Action)
	}
	return nil
}

// restart starts node i again on its data directory, waits for its
// answer, and sets its side of its cut links again (bans live in memory;
// the other side's still holds).
func (n *network) restart(ctx context.Context, i int, sets ...string) error {
	if err := n.start(i, sets...); err != nil {
		return err
	}
	if err := n.waitAnswer(ctx, i); err != nil {
		return err
	}
	for link := range n.cut {
		if link[0] == i || link[1] == i {
			if err := n.cutLink(ctx, link[0], link[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// stop ends node i with SIGTERM; it must exit 0.
func (n *network) stop(i int) error {
	p := n.procs[i]
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("node%d still running %s after SIGTERM", i, stopTimeout)
	}
	if st := p.cmd.ProcessState; !st.Success() {
		return fmt.Errorf("node%d stopped with %v after SIGTERM: %s", i, st, n.logTail(i))
	}
	return nil
}

// healAll undoes whatever the timeline left: restarts killed nodes,
// resumes paused ones, lifts every ban. It returns the moment the
// network was whole again.
func (n *network) healAll(ctx context.Context) (time.Time, error) {
	for i, p := range n.procs {
		var s Step
		switch {
		case !p.running():
			s = Step{Action: ActRestart, Node: i}
		case p.paused:
			s = Step{Action: ActResume, Node: i}
		case p.skewed:
			s = Step{Action: ActUnskew, Node: i}
		default:
			continue
		}
		if err := n.apply(ctx, s); err != nil {
			return time.Time{}, fmt.Errorf("e2e: final heal: %s: %w", s, err)
		}
	}
	if n.byz != nil {
		if err := n.apply(ctx, Step{Action: ActByzantineDone}); err != nil {
			return time.Time{}, fmt.Errorf("e2e: final heal: %w", err)
		}
	}
	if len(n.cut) > 0 {
		if err := n.apply(ctx, Step{Action: ActHeal}); err != nil {
			return time.Time{}, fmt.Errorf("e2e: final heal: %w", err)
		}
	}
	healed := time.Now()
	n.note(healed.Sub(n.t0), "final heal (all undone)", 0)
	return healed, nil
}

// cutLink bans a on b and b on a. A side that cannot be reached (killed,
// paused) is skipped: one side's ban keeps the link down, and a restarted
// node's side is set again. Both sides unreachable is an error.
func (n *network) cutLink(ctx context.Context, a, b int) error {
	errA := n.admin(ctx, a, "/p2p/ban", n.peerIDs[b], banFor)
	errB := n.admin(ctx, b, "/p2p/ban", n.peerIDs[a], banFor)
	if errA != nil && errB != nil {
		return fmt.Errorf("cut node%d–node%d: %v; %v", a, b, errA, errB)
	}
	n.cut[[2]int{min(a, b), max(a, b)}] = true
	return nil
}

// restoreLink lifts both bans. A node that cannot be reached is an error:
// its ban would keep the link down.
func (n *network) restoreLink(ctx context.Context, a, b int) error {
	if err := n.admin(ctx, a, "/p2p/unban", n.peerIDs[b], 0); err != nil {
		return err
	}
	if err := n.admin(ctx, b, "/p2p/unban", n.peerIDs[a], 0); err != nil {
		return err
	}
	delete(n.cut, [2]int{min(a, b), max(a, b)})
	return nil
}

// admin POSTs to node i's admin listener: path ?peer=ID[&for=D].
func (n *network) admin(ctx context.Context, i int, path, peerID string, d time.Duration) error {
	if n.procs[i] == nil || !n.procs[i].running() || n.procs[i].paused {
		return fmt.Errorf("node%d is down or paused", i)
	}
	q := url.Values{"peer": {peerID}}
	if d > 0 {
		q.Set("for", d.String())
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, n.adminURLs[i]+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("node%d admin %s: %w", i, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("node%d admin %s: %s: %s", i, path, resp.Status, b)
	}
	return nil
}

// byzRun is the byzantine peer's process while it plays its acts.
type byzRun struct {
	p      *proc
	report string
	acts   int
	w      ByzantineWindow
	starts [Nodes]int // each node's starts when it began
}

// byzantineActTimeout bounds each act of the byzantine peer (ember e2e
// byzantine --act-timeout): how long it misbehaves waiting to be dropped.
const byzantineActTimeout = 30 * time.Second

// startByzantine starts the byzantine peer's process against the devnet.
func (n *network) startByzantine(ctx context.Context, acts []string) error {
	if len(acts) == 0 {
		acts = byzantine.Acts
	}
	n.byzRuns++
	report := filepath.Join(n.dir, fmt.Sprintf("byzantine-%d.json", n.byzRuns))
	f, err := os.OpenFile(filepath.Join(n.dir, "byzantine.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "--- ember e2e: byzantine peer %v at %s\n", acts, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(n.cfg.Binary, "e2e", "byzantine", "--devnet", n.devnet, "--acts", strings.Join(acts, ","),
		"--report", report, "--act-timeout", byzantineActTimeout.String())
	cmd.Env, cmd.Stdout, cmd.Stderr = n.env(), f, f
	childproc.SetDeathSignal(cmd)
	b := &byzRun{report: report, acts: len(acts)}
	b.w.FromMs = uint64(time.Now().UnixMilli())
	b.w.LIBsFrom = n.eachLIB(ctx)
	b.starts = n.starts
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start the byzantine peer: %w", err)
	}
	b.p = &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(b.p.exited) }()
	n.byz = b
	return nil
}

// byzantineDone waits for the byzantine peer to finish its acts, then
// reads every node's bans and LIB: the window CheckBanned and
// CheckNoStall judge.
func (n *network) byzantineDone(ctx context.Context) error {
	b := n.byz
	if b == nil {
		return errors.New("the byzantine peer is not running")
	}
	n.byz = nil
	limit := time.Duration(b.acts)*(byzantineActTimeout+20*time.Second) + 30*time.Second
	select {
	case <-b.p.exited:
	case <-ctx.Done():
		_ = b.p.cmd.Process.Kill()
		<-b.p.exited
		return ctx.Err()
	case <-time.After(limit):
		_ = b.p.cmd.Process.Kill()
		<-b.p.exited
		return fmt.Errorf("the byzantine peer still ran after %s", limit)
	}
	b.w.ToMs = uint64(time.Now().UnixMilli())
	b.w.LIBsTo = n.eachLIB(ctx)
	rb, err := os.ReadFile(b.report)
	if err != nil {
		return fmt.Errorf("the byzantine peer's report (it exited with %v): %w", b.p.cmd.ProcessState, err)
	}
	var rep byzantine.Report
	if err := json.Unmarshal(rb, &rep); err != nil {
		return fmt.Errorf("the byzantine peer's report: %w", err)
	}
	b.w.Acts = rep.Acts
	b.w.Judged = make([]bool, Nodes)
	b.w.Bans = make([][]string, Nodes)
	for i := range Nodes {
		p := n.procs[i]
		if !p.running() || p.paused || n.starts[i] != b.starts[i] {
			continue // down or restarted through the window: its bans are gone or it never met the peer
		}
		bans, err := n.bans(ctx, i)
		if err != nil {
			return err
		}
		b.w.Judged[i], b.w.Bans[i] = true, bans
	}
	n.mu.Lock()
	n.byzWindows = append(n.byzWindows, b.w)
	n.mu.Unlock()
	return nil
}

// eachLIB is every node's last irreversible block now (0 for a node that
// does not answer).
func (n *network) eachLIB(ctx context.Context) []uint64 {
	out := make([]uint64, Nodes)
	for i := range Nodes {
		if p := n.procs[i]; p.running() && !p.paused {
			if hi, err := n.headInfo(ctx, i); err == nil {
				out[i] = hi.LastIrreversibleBlock
			}
		}
	}
	return out
}

// bans lists the peer ids node i has banned (admin GET /p2p/bans).
func (n *network) bans(ctx context.Context, i int) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, n.adminURLs[i]+"/p2p/bans", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node%d admin /p2p/bans: %w", i, err)
	}
	defer resp.Body.Close()
	var bans []struct {
		Peer string `json:"peer"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node%d admin /p2p/bans: %s", i, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&bans); err != nil {
		return nil, fmt.Errorf("node%d admin /p2p/bans: %w", i, err)
	}
	var out []string
	for _, b := range bans {
		out = append(out, b.Peer)
	}
	return out, nil
}
