package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Service is one part of the node.
type Service struct {
	// Name appears in logs and errors.
	Name string
	// Start, optional, prepares the service; the next service starts only
	// after it returns nil.
	Start func(ctx context.Context) error
	// Run serves until ctx ends and returns nil then; any other return is a
	// failure that stops the node.
	Run func(ctx context.Context) error
	// StopTimeout, optional, is how long the supervisor waits for Run to
	// return once its context is cancelled before it logs that the service
	// is slow to stop (it keeps waiting: leaving a service running while
	// the store closes would lose data).
	StopTimeout time.Duration
}

// Config configures Run.
type Config struct {
	Logger *slog.Logger // nil: discard
	// Ready is called once every service has started (systemd's READY=1).
	Ready func()
	// Stopping is called when the node begins to stop (STOPPING=1).
	Stopping func()
}

// ErrStoppedEarly is wrapped by the error of a service whose Run returned
// nil before the node was told to stop.
var ErrStoppedEarly = errors.New("supervisor: service stopped on its own")

type running struct {
	svc    Service
	cancel context.CancelFunc
	done   chan error
	err    error // set once done has been received
	exited bool
}

// Run starts the services in order and serves until ctx ends or one of
// them fails, then stops them in reverse order. It returns the first
// failure (a Start error or a Run error), or nil after a requested stop.
func Run(ctx context.Context, cfg Config, services ...Service) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exited := make(chan int, len(services))
	var started []*running
	var first error
	for i, s := range services {
		if s.Run == nil {
			first = fmt.Errorf("supervisor: service %q has no Run", s.Name)
			break
		}
		if ctx.Err() != nil {
			break
		}
		if s.Start != nil {
			if err := s.Start(ctx); err != nil {
				first = fmt.Errorf("%s: %w", s.Name, err)
				break
			}
		}
		sctx, cancel := context.WithCancel(context.Background())
		r := &running{svc: s, cancel: cancel, done: make(chan error, 1)}
		started = append(started, r)
		go func() {
			r.done <- s.Run(sctx)
			exited <- i
		}()
		log.Debug("service started", "service", s.Name)
	}
	if first == nil && ctx.Err() == nil && len(started) == len(services) {
		if cfg.Ready != nil {
			cfg.Ready()
		}
		select {
		case <-ctx.Done():
		case i := <-exited:
			r := started[i]
			r.err, r.exited = <-r.done, true
			if r.err == nil {
				r.err = ErrStoppedEarly
			}
			first = fmt.Errorf("%s: %w", r.svc.Name, r.err)
		}
	}
	if cfg.Stopping != nil {
		cfg.Stopping()
	}
	if first != nil {
		log.Error("stopping the node after a failure", "err", first)
	}
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		r.cancel()
		if !r.exited {
			r.err = wait(r, log)
		}
		if r.err != nil && first == nil {
			first = fmt.Errorf("%s: %w", r.svc.Name, r.err)
		} else if r.err != nil && !errors.Is(first, r.err) {
			log.Warn("service stopped with an error", "service", r.svc.Name, "err", r.err)
		}
		log.Debug("service stopped", "service", r.svc.Name)
	}
	return first
}

func wait(r *running, log *slog.Logger) error {
	d := r.svc.StopTimeout
	if d <= 0 {
		d = 10 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-r.done:
		return err
	case <-t.C:
		log.Warn("service is slow to stop; still waiting", "service", r.svc.Name, "waited", d)
	}
	return <-r.done
}
