package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/emberchain/ember/internal/supervisor"
	"github.com/emberchain/ember/node"
)

// Source is what the admin listener reads: the node.
type Source interface {
	Stats() node.Stats
	Health(now time.Time) (int, []string)
}

// Server is the admin listener.
type Server struct {
	srv     *http.Server
	ln      net.Listener
	metrics *Metrics
}

// Config configures the listener.
type Config struct {
	Listen string
	Pprof  bool
	Level  *slog.LevelVar // nil: /loglevel answers 404
	Logger *slog.Logger
}

// liveHeapMetrics picks the runtime/metrics the Go collector adds.
var liveHeapMetrics = regexp.MustCompile(`^/gc/heap/(live|goal):bytes$`)

// New builds the listener; m must be the Metrics given to the node (its
// Observer) and the gateway (its Observer).
func New(cfg Config, src Source, m *Metrics) *Server {
	mux := http.NewServeMux()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(
		// Besides the classic go_memstats_*: the heap that was live at the
		// last GC and the heap goal, go_gc_heap_live_bytes and
		// go_gc_heap_goal_bytes. heap_inuse swings with the GC's sawtooth;
		// the live heap is what a leak moves (docs/reliability.md, Soak).
		collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: liveHeapMetrics}),
	), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(m.collectors()...)
	reg.MustRegister(&statsCollector{src: src})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{cfg.Logger}}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		code, why := src.Health(time.Now())
		state := map[int]string{node.HealthOK: "ok", node.HealthDegraded: "degraded", node.HealthDown: "down"}[code]
		s := src.Stats()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(struct {
			Status  string   `json:"status"`
			Reasons []string `json:"reasons,omitempty"`
			Head    uint64   `json:"head_height"`
			LIB     uint64   `json:"last_irreversible_block"`
			HeadAge float64  `json:"head_age_seconds"`
			Peers   int      `json:"peers"`
		}{state, why, s.Head.Height, s.LIB.Height, time.Since(s.HeadTime).Seconds(), s.Peers})
	})
	if cfg.Level != nil {
		mux.HandleFunc("GET /loglevel", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.ToLower(cfg.Level.Level().String())+"\n")
		})
		mux.HandleFunc("PUT /loglevel", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 64))
			var l slog.Level
			if err := l.UnmarshalText([]byte(strings.TrimSpace(string(b)))); err != nil {
				http.Error(w, "expected debug, info, warn or error", http.StatusBadRequest)
				return
			}
			cfg.Level.Set(l)
			if cfg.Logger != nil {
				cfg.Logger.Info("log level changed", "level", l.String())
			}
			io.WriteString(w, strings.ToLower(l.String())+"\n")
		})
	}
	networkRoutes(mux, src, cfg.Logger)
	busRoutes(mux, src, cfg.Logger)
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return &Server{
		srv: &http.Server{
			Addr: cfg.Listen, Handler: mux,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			// Profiles stream for up to their duration (default 30 s).
			WriteTimeout: 2 * time.Minute, IdleTimeout: time.Minute,
		},
		metrics: m,
	}
}

// Listen binds the address, so Addr is known before Serve.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the listener.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Service runs the listener under the node's supervisor: bound at Start,
// served until the node stops, then shut down (2 s for requests under way).
func (s *Server) Service(log *slog.Logger) supervisor.Service {
	return supervisor.Service{
		Name: "admin",
		Start: func(context.Context) error {
			if err := s.Listen(); err != nil {
				return fmt.Errorf("listen on %s: %w", s.srv.Addr, err)
			}
			if log != nil {
				log.Info("admin listening", "addr", s.Addr())
			}
			return nil
		},
		Run: func(ctx context.Context) error {
			served := make(chan error, 1)
			go func() { served <- s.Serve() }()
			select {
			case err := <-served:
				return fmt.Errorf("serve: %w", err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s.Shutdown(sctx)
			return <-served
		},
	}
}

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	if p.l != nil {
		p.l.Warn("metrics", "err", v)
	}
}
