package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a progress bar on a terminal (redrawn in place five
// times a second) or, when the output is not a terminal, a line every
// five seconds, so logs of CI runs stay short.
type progress struct {
	w     io.Writer
	label string
	tty   bool
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) every() time.Duration {
	if p.tty {
		return 200 * time.Millisecond
	}
	return 5 * time.Second
}

func (p *progress) loop(draw func(final bool) string) {
	if p.w == nil {
		return
	}
	p.quit = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.every())
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				if p.tty {
					fmt.Fprintf(p.w, "\r%s\033[K\n", draw(true))
				}
				return
			case <-t.C:
				if p.tty {
					fmt.Fprintf(p.w, "\r%s\033[K", draw(false))
				} else {
					fmt.Fprintln(p.w, draw(false))
				}
			}
		}
	}()
}

func (p *progress) stop() {
	if p.quit != nil {
		close(p.quit)
		p.wg.Wait()
		p.quit = nil
	}
}

func bar(done, total int64, width int) string {
	if total <= 0 {
		return strings.Repeat(" ", width)
	}
	n := int(int64(width) * min(done, total) / total)
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}

func (p *progress) prefix() string {
	if p.label == "" {
		return ""
	}
	return p.label + " "
}

func (p *progress) startSigning(total int, signed *atomic.Int64) {
	start := time.Now()
	p.loop(func(bool) string {
		n := signed.Load()
		return fmt.Sprintf("%ssigning %s %d/%d  %.0f tx/s", p.prefix(), bar(n, int64(total), 20), n, total, float64(n)/time.Since(start).Seconds())
	})
}

func (p *progress) startRun(total int, sub *submitter, fol *follower) {
	start := time.Now()
	var lastAck, lastInc int64
	last := start
	p.loop(func(bool) string {
		now := time.Now()
		a, inc := sub.acked.Load(), fol.included.Load()
		dt := now.Sub(last).Seconds()
		ar, ir := float64(a-lastAck)/dt, float64(inc-lastInc)/dt
		lastAck, lastInc, last = a, inc, now
		if fol.deferBodies && !fol.catchUp.Load() {
			return fmt.Sprintf("%s%s  sent %d/%d  admitted %d  errors %d  head %d (blocks read after the load) | admit %.0f/s | %.1fs",
				p.prefix(), bar(a, int64(total), 20), sub.sent.Load(), total, a, sub.failed.Load(), fol.headHeight.Load(), ar, now.Sub(start).Seconds())
		}
		return fmt.Sprintf("%s%s %3.0f%%  sent %d/%d  admitted %d  in blocks %d  errors %d  | admit %.0f/s  commit %.0f/s  | %.1fs",
			p.prefix(), bar(inc, int64(total), 20), 100*float64(inc)/float64(total), sub.sent.Load(), total, a, inc, sub.failed.Load(), ar, ir, now.Sub(start).Seconds())
	})
}
