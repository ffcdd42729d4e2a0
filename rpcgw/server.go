package rpcgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/internal/logsample"
)

// Backend serves Koinos service requests. req is a request envelope (e.g.
// *chainrpc.ChainRequest) with one member set; the reply is the matching
// response envelope with that method's response or `error`
// (koinos.rpc.error_status) set. A Go error means the backend could not
// answer at all (reported as -32603).
//
// Serve is called from many goroutines at once. It must return promptly once
// ctx is done: the gateway does not abandon a call, because an abandoned call
// would keep running while its worker is handed to the next request, and the
// worker bound would no longer bound the backend. Serve must not keep req
// after it returns.
type Backend interface {
	Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error)
}

// Server is the public JSON-RPC 2.0 gateway. Create it with New.
type Server struct {
	cfg     Config
	reg     *registry
	backend Backend
	log     *slog.Logger
	obs     Observer
	path    []byte
	hs      *fasthttp.Server
	adm     *admission
	parsers fastjson.ParserPool
	bodies  bodyPool // large answers' buffers (bodypool.go)

	corsAny     bool
	corsOrigins map[string]struct{}

	// Overload answers, formatted once: rejecting must stay cheap when it
	// is all the server does.
	dataFull, dataExpired string

	// base is the parent of every backend call's context. It is cancelled
	// when Shutdown's drain deadline passes, so that in-flight calls give up
	// and the process can exit.
	base   context.Context
	cancel context.CancelFunc

	closing atomic.Bool
	stats   counters
	warns   logsample.Sampler

	mu struct {
		sync.Mutex
		lns      []net.Listener
		shutdown bool
	}
}

// New builds a Server from cfg (after EnsureDefaults and Validate) serving
// calls through backend.
func New(cfg Config, backend Backend) (*Server, error) {
	if backend == nil {
		return nil, errors.New("rpcgw: nil backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.EnsureDefaults()
	reg, err := newRegistry(cfg.Services, cfg.RefusedMethods)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		bodies:  bodyPool{max: largeBodiesHeld, idle: largeBodyIdle},
		reg:     reg,
		backend: backend,
		log:     cfg.Logger,
		obs:     cfg.Observer,
		path:    []byte(cfg.Path),
		adm:     newAdmission(cfg.Workers, cfg.QueueSize, cfg.QueueTimeout),

		dataFull:    fmt.Sprintf("all %d workers are busy and %d requests are queued; retry shortly", cfg.Workers, max(cfg.QueueSize, 0)),
		dataExpired: fmt.Sprintf("no worker became free within %v; retry shortly", cfg.QueueTimeout),
	}
	if len(cfg.CORSOrigins) > 0 {
		s.corsOrigins = map[string]struct{}{}
		for _, o := range cfg.CORSOrigins {
			if o == "*" {
				s.corsAny = true
			}
			s.corsOrigins[o] = struct{}{}
		}
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.hs = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.handleReadError,
		Concurrency:        cfg.MaxConns,
		MaxConnsPerIP:      cfg.MaxConnsPerIP,
		ReadTimeout:        cfg.ReadTimeout,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		MaxRequestBodySize: cfg.MaxBodyBytes,
		// Bodies are JSON; never spend time parsing a multipart form.
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		Logger:                       httpLogger{s},
	}
	return s, nil
}

// ListenAndServe listens on Config.Addr and serves until Shutdown, then
// returns ErrServerClosed.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("rpcgw: %w", err)
	}
	return s.Serve(ln)
}

// Serve serves connections from ln, which it closes, until Shutdown; then it
// returns ErrServerClosed. It may be called for several listeners.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.mu.lns = append(s.mu.lns, ln)
	s.mu.Unlock()
	s.log.Info("rpcgw: serving JSON-RPC", "addr", ln.Addr().String(), "path", s.cfg.Path,
		"workers", s.cfg.Workers, "queue", s.cfg.QueueSize, "cors", len(s.cfg.CORSOrigins) > 0)
	err := s.hs.Serve(ln)
	if err == nil || s.closing.Load() {
		return ErrServerClosed
	}
	return fmt.Errorf("rpcgw: serve: %w", err)
}

// Addr returns the address of the first listener being served, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.lns) == 0 {
		return nil
	}
	return s.mu.lns[0].Addr()
}

// Shutdown stops accepting connections, lets in-flight requests finish and
// closes idle connections. If ctx ends first, it cancels the backend calls
// still running (their requests are answered -32603) and returns ctx's
// error; connections still open then close after their current response.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		return nil
	}
	s.mu.shutdown = true
	lns := s.mu.lns
	s.mu.Unlock()
	s.closing.Store(true)

	err := s.hs.ShutdownWithContext(ctx)
	// fasthttp only closes the listeners its Serve has registered; a Serve
	// that registered with us but not yet with fasthttp would otherwise run
	// on. Closing twice is harmless.
	for _, ln := range lns {
		ln.Close()
	}
	s.cancel()
	s.bodies.close()
	if err != nil {
		return fmt.Errorf("rpcgw: shutdown: %w", err)
	}
	return nil
}

// Stats is a snapshot of the gateway's counters, for metrics at the edge.
type Stats struct {
	Calls       uint64 // observations: calls answered (each batch element counts) and requests rejected unparsed
	CallErrors  uint64 // of which answered with an error
	Batches     uint64 // batch requests
	Rejected    uint64 // requests answered 503: workers and queue full
	QueueExpiry uint64 // requests answered 504: waited past QueueTimeout
	Panics      uint64 // panics recovered (gateway or backend): each is a bug
	Running     int    // requests holding a worker now
	Queued      int64  // requests waiting for a worker now
	// AnswerBuffers is the bytes of large answer buffers kept for reuse
	// (at most 64 MiB; one unused for 10 s is let go).
	AnswerBuffers int
}

type counters struct {
	calls, callErrors, batches, rejected, queueExpiry, panics atomic.Uint64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	return Stats{
		Calls:       s.stats.calls.Load(),
		CallErrors:  s.stats.callErrors.Load(),
		Batches:     s.stats.batches.Load(),
		Rejected:    s.stats.rejected.Load(),
		QueueExpiry: s.stats.queueExpiry.Load(),
		Panics:      s.stats.panics.Load(),
		Running:     s.adm.running(),
		Queued:      s.adm.queued(),

		AnswerBuffers: s.bodies.heldBytes(),
	}
}

func (s *Server) warn(msg string, args ...any) { s.warns.Warn(s.log, msg, args...) }

// httpLogger receives fasthttp's own messages (accept errors, connection
// errors other than the common resets).
type httpLogger struct{ s *Server }

func (l httpLogger) Printf(format string, args ...any) {
	l.s.warn("rpcgw: http: " + fmt.Sprintf(format, args...))
}
