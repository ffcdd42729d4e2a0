package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"syscall"
	"time"
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
