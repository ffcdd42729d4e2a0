package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/emberchain/ember/internal/e2e/byzantine"
)

// Nodes is the size of every scenario's network: four producers, so that
// three (more than 2/3) finalize blocks and one may be perturbed at a time
// without stopping irreversibility.
const Nodes = 4

// The actions of a scenario's timeline. Each perturbation has its undo.
const (
	ActKill       = "kill"       // SIGKILL the node's process
	ActRestart    = "restart"    // start it again on its data directory
	ActPause      = "pause"      // SIGSTOP
	ActResume     = "resume"     // SIGCONT
	ActDisconnect = "disconnect" // every other node bans it and it bans them (admin /p2p/ban)
	ActReconnect  = "reconnect"  // the bans lifted (admin /p2p/unban)
	ActPartition  = "partition"  // the nodes of each group ban those of the other groups
	ActHeal       = "heal"       // every ban lifted
	ActSkew       = "skew"       // restart the node with its clock Offset ahead (node.clock_offset)
	ActUnskew     = "unskew"     // restart it with the true clock
	// ActByzantine starts the byzantine peer (ember e2e byzantine, a
	// process) with the step's Acts; ActByzantineDone waits until it has
	// played them all, then reads every node's bans.
	ActByzantine     = "byzantine"
	ActByzantineDone = "byzantine-done"
)

// undoOf maps a perturbation to the action that ends it.
var undoOf = map[string]string{ActKill: ActRestart, ActPause: ActResume, ActDisconnect: ActReconnect, ActPartition: ActHeal, ActSkew: ActUnskew, ActByzantine: ActByzantineDone}

// Scenario is one scenario file (TOML), in the spirit of CometBFT's e2e
// manifests: the network's settings and a timeline of perturbations,
// written out (step) or drawn at random from a seed (mixed).
type Scenario struct {
	Name        string `toml:"-"` // the file's name without .toml
	Description string `toml:"description"`
	// BlockInterval of the devnet's chain [400 ms].
	BlockInterval time.Duration `toml:"block_interval"`
	// Warmup is the time under load before the timeline starts, from
	// the first irreversible blocks [5 s].
	Warmup time.Duration `toml:"warmup"`
	// TxRate is the honest transfers per second, all senders together
	// (one sender per node) [20].
	TxRate float64 `toml:"tx_rate"`
	// ResumeSlots: after the final heal, a block of the final chain must
	// be in one of this many slots [3]. ProducersWithin: and every
	// producer must have signed one within this time [3 rounds of slots
	// plus 10 s: a killed node restarts, syncs and waits to hear its
	// peers' heads before it produces].
	ResumeSlots     int           `toml:"resume_slots"`
	ProducersWithin time.Duration `toml:"producers_within"`
	// StallSlots: while the byzantine peer acts, the final chain may
	// have at most this many slots in a row without a block [3 rounds].
	StallSlots int `toml:"stall_slots"`
	// Seed draws a mixed timeline (0: from the clock, printed).
	Seed  uint64 `toml:"seed"`
	Steps []Step `toml:"step"`
	Mixed *Mixed `toml:"mixed"`
	// KnownFailure, when set, says why the scenario is expected to fail
	// (an open bug): ember e2e reports its violations and does not count
	// them as a failure of the run.
	KnownFailure string `toml:"known_failure"`
}

// Step is one action of a timeline, At after the timeline starts.
type Step struct {
	At     time.Duration `toml:"at"`
	Action string        `toml:"action"`
	Node   int           `toml:"node"`   // for kill, restart, pause, resume, disconnect, reconnect
	Groups [][]int       `toml:"groups"` // for partition: two or more disjoint groups of nodes
	Offset time.Duration `toml:"offset"` // for skew: how far ahead (or, negative, behind) the node's clock runs
	Acts   []string      `toml:"acts"`   // for byzantine: its acts (internal/e2e/byzantine); empty: all
}

func (s Step) String() string {
	switch s.Action {
	case ActPartition:
		return fmt.Sprintf("%s %v", s.Action, s.Groups)
	case ActHeal:
		return s.Action
	case ActSkew:
		return fmt.Sprintf("%s node%d by %v", s.Action, s.Node, s.Offset)
	case ActByzantine:
		if len(s.Acts) == 0 {
			return s.Action + " (every act)"
		}
		return fmt.Sprintf("%s %v", s.Action, s.Acts)
	case ActByzantineDone:
		return s.Action
	}
	return fmt.Sprintf("%s node%d", s.Action, s.Node)
}

// Mixed draws a timeline: Duration long, perturbations of the listed
// kinds one after another, each held for a random time between MinHold
// and MaxHold, then undone, with a random quiet time between MinGap and
// MaxGap before the next.
type Mixed struct {
	Duration      time.Duration `toml:"duration"`
	Perturbations []string      `toml:"perturbations"` // kill, pause, disconnect, partition
	MinHold       time.Duration `toml:"min_hold"`
	MaxHold       time.Duration `toml:"max_hold"`
	MinGap        time.Duration `toml:"min_gap"`
	MaxGap        time.Duration `toml:"max_gap"`
}

// LoadScenario reads and checks a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	s, err := ParseScenario(name, string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// LoadScenarios reads every *.toml file of dir, in name order.
func LoadScenarios(dir string) ([]*Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("e2e: no *.toml scenario in %s", dir)
	}
	slices.Sort(paths)
	var out []*Scenario
	for _, p := range paths {
		s, err := LoadScenario(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseScenario decodes a scenario, fills its defaults and checks it.
func ParseScenario(name, text string) (*Scenario, error) {
	s := &Scenario{}
	md, err := toml.Decode(text, s)
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		return nil, fmt.Errorf("e2e: unknown keys %v", un)
	}
	s.Name = name
	if err := s.ensureDefaults(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Scenario) ensureDefaults() error {
	if s.BlockInterval == 0 {
		s.BlockInterval = 400 * time.Millisecond
	}
	if s.BlockInterval < 100*time.Millisecond || s.BlockInterval > 10*time.Second {
		return fmt.Errorf("e2e: block_interval %v: expected 100ms to 10s", s.BlockInterval)
	}
	if s.Warmup == 0 {
		s.Warmup = 5 * time.Second
	}
	if s.TxRate == 0 {
		s.TxRate = 20
	}
	if s.TxRate < 0 || s.TxRate > 1000 {
		return fmt.Errorf("e2e: tx_rate %v: expected 0 to 1000", s.TxRate)
	}
	if s.ResumeSlots == 0 {
		s.ResumeSlots = 3
	}
	if s.ProducersWithin == 0 {
		s.ProducersWithin = 3*Nodes*s.BlockInterval + 10*time.Second
	}
	if s.StallSlots == 0 {
		s.StallSlots = 3 * Nodes
	}
	if (len(s.Steps) > 0) == (s.Mixed != nil) {
		return errors.New("e2e: a scenario has either [[step]] tables or a [mixed] table")
	}
	if s.Mixed != nil {
		if err := s.Mixed.check(); err != nil {
			return err
		}
		if s.Seed == 0 {
			s.Seed = uint64(time.Now().UnixNano())
		}
		s.Steps = s.Mixed.draw(s.Seed)
	}
	return CheckTimeline(s.Steps)
}

func (m *Mixed) check() error {
	if m.Duration <= 0 {
		return errors.New("e2e: mixed.duration is required")
	}
	if len(m.Perturbations) == 0 {
		return errors.New("e2e: mixed.perturbations is empty")
	}
	for _, p := range m.Perturbations {
		if _, ok := undoOf[p]; !ok {
			return fmt.Errorf("e2e: mixed.perturbations: %q is not one of kill, pause, disconnect, partition, skew, byzantine", p)
		}
	}
	if m.MinHold <= 0 || m.MaxHold < m.MinHold || m.MinGap <= 0 || m.MaxGap < m.MinGap {
		return errors.New("e2e: mixed needs 0 < min_hold <= max_hold and 0 < min_gap <= max_gap")
	}
	return nil
}

// mixedSkew is a mixed timeline's clock skew: beyond the default allowed
// drift (genesis max_clock_drift_ms, 5 s), so the skewed producer's blocks
// are refused as from the future.
const mixedSkew = 7 * time.Second

// draw lays perturbations end to end until Duration: one at a time, so
// that at most one node (or one 2–2 split) is out at any moment, and
// the network is expected to finalize again after each.
func (m *Mixed) draw(seed uint64) []Step {
	rng := rand.New(rand.NewPCG(seed, 0x653265))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	var steps []Step
	at := between(m.MinGap, m.MaxGap)
	for at < m.Duration {
		kind := m.Perturbations[rng.IntN(len(m.Perturbations))]
		hold := between(m.MinHold, m.MaxHold)
		p := Step{At: at, Action: kind, Node: rng.IntN(Nodes)}
		undo := Step{At: at + hold, Action: undoOf[kind], Node: p.Node}
		if kind == ActSkew {
			p.Offset = mixedSkew
		}
		if kind == ActByzantine {
			// One act at a time, so that each is held against the
			// others' quiet; the done step waits for it.
			p.Node, undo.Node = 0, 0
			p.Acts = []string{byzantine.Acts[rng.IntN(len(byzantine.Acts))]}
		}
		if kind == ActPartition {
			// A 2–2 split: node 0 with one other at random.
			other := 1 + rng.IntN(Nodes-1)
			var rest []int
			for i := 1; i < Nodes; i++ {
				if i != other {
					rest = append(rest, i)
				}
			}
			p.Node, undo.Node = 0, 0
			p.Groups = [][]int{{0, other}, rest}
		}
		steps = append(steps, p, undo)
		at += hold + between(m.MinGap, m.MaxGap)
	}
	return steps
}

// CheckTimeline refuses a timeline the runner cannot play: an unknown
// action, a node out of range, steps out of time order, an undo without
// its perturbation, a perturbation of a node already perturbed, or
// overlapping partition groups.
func CheckTimeline(steps []Step) error {
	if len(steps) == 0 {
		return errors.New("e2e: the timeline is empty")
	}
	killed, paused, cut, skewed := map[int]bool{}, map[int]bool{}, map[int]bool{}, map[int]bool{}
	partitioned, byz := false, false
	for i, s := range steps {
		where := fmt.Sprintf("e2e: step %d (%s at %v)", i+1, s.Action, s.At)
		if s.At < 0 || i > 0 && s.At < steps[i-1].At {
			return fmt.Errorf("%s: steps must be in time order", where)
		}
		if s.Node < 0 || s.Node >= Nodes {
			return fmt.Errorf("%s: node %d: the network has nodes 0 to %d", where, s.Node, Nodes-1)
		}
		var err error
		switch s.Action {
		case ActKill, ActPause:
			if killed[s.Node] || paused[s.Node] || skewed[s.Node] {
				err = fmt.Errorf("node%d is already killed, paused or skewed", s.Node)
			}
			if s.Action == ActKill {
				killed[s.Node] = true
			} else {
				paused[s.Node] = true
			}
		case ActRestart:
			if !killed[s.Node] {
				err = fmt.Errorf("node%d was not killed", s.Node)
			}
			delete(killed, s.Node)
		case ActResume:
			if !paused[s.Node] {
				err = fmt.Errorf("node%d was not paused", s.Node)
			}
			delete(paused, s.Node)
		case ActDisconnect:
			if cut[s.Node] {
				err = fmt.Errorf("node%d is already disconnected", s.Node)
			}
			cut[s.Node] = true
		case ActReconnect:
			if !cut[s.Node] {
				err = fmt.Errorf("node%d was not disconnected", s.Node)
			}
			delete(cut, s.Node)
		case ActPartition:
			err = checkGroups(s.Groups)
			if partitioned {
				err = errors.New("the network is already partitioned")
			}
			partitioned = true
		case ActSkew:
			switch {
			case s.Offset == 0:
				err = errors.New("skew needs an offset (e.g. offset = \"7s\")")
			case killed[s.Node] || paused[s.Node] || skewed[s.Node]:
				err = fmt.Errorf("node%d is already killed, paused or skewed", s.Node)
			}
			skewed[s.Node] = true
		case ActUnskew:
			if !skewed[s.Node] {
				err = fmt.Errorf("node%d was not skewed", s.Node)
			}
			delete(skewed, s.Node)
		case ActByzantine:
			if byz {
				err = errors.New("the byzantine peer is already running")
			}
			for _, a := range s.Acts {
				if !slices.Contains(byzantine.Acts, a) {
					err = fmt.Errorf("unknown byzantine act %q (one of %v)", a, byzantine.Acts)
				}
			}
			byz = true
		case ActByzantineDone:
			if !byz {
				err = errors.New("the byzantine peer was not started")
			}
			byz = false
		case ActHeal:
			if !partitioned {
				err = errors.New("the network was not partitioned")
			}
			partitioned = false
		default:
			err = fmt.Errorf("unknown action %q (kill, restart, pause, resume, disconnect, reconnect, partition, heal, skew, unskew, byzantine, byzantine-done)", s.Action)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

func checkGroups(groups [][]int) error {
	if len(groups) < 2 {
		return errors.New("a partition needs groups = [[...], [...]], two or more")
	}
	seen := map[int]bool{}
	for _, g := range groups {
		if len(g) == 0 {
			return errors.New("a partition group is empty")
		}
		for _, n := range g {
			if n < 0 || n >= Nodes {
				return fmt.Errorf("node %d in a group: the network has nodes 0 to %d", n, Nodes-1)
			}
			if seen[n] {
				return fmt.Errorf("node %d is in two groups", n)
			}
			seen[n] = true
		}
	}
	return nil
}

// Length is when the timeline's last step happens.
func (s *Scenario) Length() time.Duration { return s.Steps[len(s.Steps)-1].At }

// Reseed draws a mixed scenario's timeline again from seed; a written-out
// timeline is left as it is.
func (s *Scenario) Reseed(seed uint64) {
	if s.Mixed == nil || seed == 0 {
		return
	}
	s.Seed, s.Steps = seed, s.Mixed.draw(seed)
}
