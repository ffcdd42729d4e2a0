package supervisor

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder logs what the services do, in order.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// svc is a service that records its start and stop; startErr fails Start,
// runErr (after runAfter) makes Run return on its own.
func svc(r *recorder, name string, startErr, runErr error, runAfter time.Duration, ownStop bool) Service {
	s := Service{Name: name}
	s.Start = func(context.Context) error {
		r.add("start " + name)
		return startErr
	}
	s.Run = func(ctx context.Context) error {
		if ownStop {
			select {
			case <-time.After(runAfter):
				r.add("exit " + name)
				return runErr
			case <-ctx.Done():
			}
		} else {
			<-ctx.Done()
		}
		r.add("stop " + name)
		return nil
	}
	return s
}

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		services  func(r *recorder) []Service
		cancelAt  time.Duration // 0: never (a service must end it)
		wantErr   error
		wantReady bool
		want      []string
	}{
		{
			name: "started in order, stopped in reverse",
			services: func(r *recorder) []Service {
				return []Service{svc(r, "a", nil, nil, 0, false), svc(r, "b", nil, nil, 0, false), svc(r, "c", nil, nil, 0, false)}
			},
			cancelAt:  20 * time.Millisecond,
			wantReady: true,
			want:      []string{"start a", "start b", "start c", "ready", "stopping", "stop c", "stop b", "stop a"},
		},
		{
			name: "a failed start stops the started ones and never reports ready",
			services: func(r *recorder) []Service {
				return []Service{svc(r, "a", nil, nil, 0, false), svc(r, "b", boom, nil, 0, false), svc(r, "c", nil, nil, 0, false)}
			},
			wantErr: boom,
			want:    []string{"start a", "start b", "stopping", "stop a"},
		},
		{
			name: "a failing service stops the others",
			services: func(r *recorder) []Service {
				return []Service{svc(r, "a", nil, nil, 0, false), svc(r, "b", nil, boom, 20*time.Millisecond, true), svc(r, "c", nil, nil, 0, false)}
			},
			wantErr:   boom,
			wantReady: true,
			want:      []string{"start a", "start b", "start c", "ready", "exit b", "stopping", "stop c", "stop a"},
		},
		{
			name: "a service that returns nil on its own is a failure",
			services: func(r *recorder) []Service {
				return []Service{svc(r, "a", nil, nil, 0, false), svc(r, "b", nil, nil, 20*time.Millisecond, true)}
			},
			wantErr:   ErrStoppedEarly,
			wantReady: true,
			want:      []string{"start a", "start b", "ready", "exit b", "stopping", "stop a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelAt > 0 {
				time.AfterFunc(tt.cancelAt, cancel)
			}
			ready := false
			err := Run(ctx, Config{Ready: func() { ready = true; r.add("ready") }, Stopping: func() { r.add("stopping") }}, tt.services(r)...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Run() = %v, want %v", err, tt.wantErr)
			}
			if ready != tt.wantReady {
				t.Errorf("ready = %v, want %v", ready, tt.wantReady)
			}
			if got := r.events(); !slices.Equal(got, tt.want) {
				t.Errorf("events:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// A Run error wins over a later stop error, and the error names the service.
func TestRunNamesTheService(t *testing.T) {
	err := Run(context.Background(), Config{}, Service{Name: "p2p", Run: func(context.Context) error { return errors.New("listen: address in use") }})
	if err == nil || err.Error() != "p2p: listen: address in use" {
		t.Fatalf("Run() = %v", err)
	}
}

// A cancelled parent before any start runs nothing.
func TestRunCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	started := false
	err := Run(ctx, Config{Ready: func() { t.Error("ready on a cancelled context") }}, Service{Name: "a", Run: func(context.Context) error { started = true; return nil }})
	if err != nil || started {
		t.Fatalf("Run() = %v, started %v", err, started)
	}
}
