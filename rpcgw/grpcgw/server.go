package grpcgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/internal/logsample"
	"github.com/emberchain/ember/rpcgw"
)

// ErrorDataTrailer is the trailer that carries koinos.rpc.error_status.data
// (the chain's error code and logs as JSON, as JSON-RPC's error data) when a
// call fails with the backend's error. Koinos's gateway sends only the
// message; the trailer adds what Ember's JSON-RPC gives.
const ErrorDataTrailer = "koinos-error-data"

// Server is the gRPC gateway. Create it with New.
type Server struct {
	cfg     Config
	backend rpcgw.Backend
	log     *slog.Logger
	methods map[string]*method
	adm     *rpcgw.Admission
	gs      *grpc.Server
	health  *health.Server

	dataFull, dataExpired string

	stats counters
	warns logsample.Sampler

	stop       chan struct{} // closed by Shutdown: ends the health loop
	stopOnce   sync.Once
	healthOnce sync.Once // one health loop, however many listeners
	closing    atomic.Bool
	mu         sync.Mutex
	lns        []net.Listener
}

// New builds a Server from cfg serving calls through backend.
func New(cfg Config, backend rpcgw.Backend) (*Server, error) {
	if backend == nil {
		return nil, errors.New("grpcgw: nil backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.EnsureDefaults()
	methods, err := buildMethods(cfg.Services, cfg.RefusedMethods)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, backend: backend, log: cfg.Logger, methods: methods,
		adm:         rpcgw.NewAdmission(cfg.Workers, cfg.QueueSize, cfg.QueueTimeout),
		dataFull:    fmt.Sprintf("Server overloaded: all %d workers are busy and %d requests are queued; retry shortly", cfg.Workers, max(cfg.QueueSize, 0)),
		dataExpired: fmt.Sprintf("Server overloaded: no worker became free within %v; retry shortly", cfg.QueueTimeout),
		stop:        make(chan struct{}),
	}
	s.gs = grpc.NewServer(
		grpc.ForceServerCodecV2(newCodec()),
		grpc.MaxRecvMsgSize(cfg.MaxRecvBytes),
		grpc.MaxSendMsgSize(cfg.MaxSendBytes),
		grpc.MaxConcurrentStreams(uint32(min(cfg.MaxConcurrentStreams, 1<<31))),
		grpc.ConnectionTimeout(cfg.ConnectionTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.KeepaliveMinTime}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: cfg.IdleTimeout, Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout,
		}),
	)
	s.health = health.NewServer()
	for _, gsvc := range grpcServices() {
		desc := *gsvc.desc
		desc.Methods = nil
		desc.HandlerType = nil // the handlers below need no service value
		for _, md := range gsvc.desc.Methods {
			m := methods["/"+desc.ServiceName+"/"+md.MethodName]
			if m == nil {
				continue
			}
			desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: md.MethodName, Handler: s.handler(m)})
		}
		if len(desc.Methods) > 0 {
			s.gs.RegisterService(&desc, nil)
			s.health.SetServingStatus(desc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		}
	}
	healthpb.RegisterHealthServer(s.gs, s.health)
	reflection.Register(s.gs)
	return s, nil
}

// Serve serves connections from ln, which it closes, until Shutdown; then it
// returns rpcgw.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return rpcgw.ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	s.log.Info("grpcgw: serving gRPC", "addr", ln.Addr().String(), "workers", s.cfg.Workers, "queue", s.cfg.QueueSize)
	s.healthOnce.Do(func() { go s.watchHealth() })
	err := s.gs.Serve(netutil.LimitListener(limitPerIP(ln, s.cfg.MaxConnsPerIP, &s.stats.refusedConns), s.cfg.MaxConns))
	if err == nil || s.closing.Load() || errors.Is(err, grpc.ErrServerStopped) {
		return rpcgw.ErrServerClosed
	}
	return fmt.Errorf("grpcgw: serve: %w", err)
}

// Addr returns the address of the first listener being served, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lns) == 0 {
		return nil
	}
	return s.lns[0].Addr()
}

// watchHealth keeps the health service's answer in step with Config.Healthy.
func (s *Server) watchHealth() {
	if s.cfg.Healthy == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if s.cfg.Healthy() {
			st = healthpb.HealthCheckResponse_SERVING
		}
		s.health.SetServingStatus("", st)
		for _, gsvc := range grpcServices() {
			s.health.SetServingStatus(gsvc.desc.ServiceName, st)
		}
		select {
		case <-t.C:
		case <-s.stop:
			return
		}
	}
}

// Shutdown stops accepting connections and lets calls in flight finish; if
// ctx ends first, it cancels them (the backend sees its context end) and
// returns ctx's error. The health service answers NOT_SERVING from the start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	s.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stop) })
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.gs.Stop()
		<-done
		return fmt.Errorf("grpcgw: shutdown: %w", ctx.Err())
	}
}

// Stats is a snapshot of the gateway's counters, for metrics at the edge.
type Stats struct {
	Calls       uint64 // calls answered
	CallErrors  uint64 // of which with a status other than OK
	Rejected    uint64 // ResourceExhausted: workers and queue full
	QueueExpiry uint64 // ResourceExhausted: waited past QueueTimeout
	Panics      uint64 // panics recovered in the backend: each is a bug
	// RefusedConns: connections closed on accept, their client IP already
	// holding MaxConnsPerIP.
	RefusedConns uint64
	Running      int   // calls holding a worker now
	Queued       int64 // calls waiting for a worker now
}

type counters struct {
	calls, callErrors, rejected, queueExpiry, panics, refusedConns atomic.Uint64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	return Stats{
		Calls: s.stats.calls.Load(), CallErrors: s.stats.callErrors.Load(),
		Rejected: s.stats.rejected.Load(), QueueExpiry: s.stats.queueExpiry.Load(),
		Panics: s.stats.panics.Load(), RefusedConns: s.stats.refusedConns.Load(), Running: s.adm.Running(), Queued: s.adm.Queued(),
	}
}

// handler serves one method: it takes the request undecoded (see
// rawRequest), and answers through serve.
func (s *Server) handler(m *method) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		start := time.Now()
		var raw rawRequest
		if err := dec(&raw); err != nil {
			return nil, err
		}
		resp, err := s.serve(ctx, m, raw.b)
		code := status.Code(err)
		s.stats.calls.Add(1)
		if code != codes.OK {
			s.stats.callErrors.Add(1)
		}
		if s.cfg.Observer != nil {
			s.cfg.Observer.ObserveGRPC(m.full, code, time.Since(start))
		}
		return resp, err
	}
}

// serve answers one call: refusal, decoding, admission, the backend, and
// its answer unwrapped from the envelope.
func (s *Server) serve(ctx context.Context, m *method, body []byte) (proto.Message, error) {
	if m.refused {
		return nil, status.Errorf(codes.PermissionDenied, "%s is not served on this endpoint", m.full)
	}
	env, err := m.decode(body)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	switch s.adm.Acquire(ctx.Done()) {
	case rpcgw.Admitted:
	case rpcgw.RejectedFull:
		s.stats.rejected.Add(1)
		s.warn("grpcgw: overloaded: workers and queue full", "workers", s.cfg.Workers, "queue", s.cfg.QueueSize)
		return nil, status.Error(codes.ResourceExhausted, s.dataFull)
	case rpcgw.RejectedTimeout:
		s.stats.queueExpiry.Add(1)
		s.warn("grpcgw: overloaded: call waited past the queue timeout", "timeout", s.cfg.QueueTimeout)
		return nil, status.Error(codes.ResourceExhausted, s.dataExpired)
	case rpcgw.RejectedClosed:
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	defer s.adm.Release()

	resp, err := s.callBackend(ctx, m, env)
	if err != nil {
		return nil, err
	}
	rm := resp.ProtoReflect()
	switch fd := rm.WhichOneof(m.respOneof); {
	case fd == nil:
		s.warn("grpcgw: backend returned an empty response envelope", "method", m.full)
		return nil, status.Error(codes.Internal, "unexpected response type")
	case fd.Number() == m.errField.Number():
		// Koinos's gateway answers every error_status with
		// InvalidArgument and its message.
		es := rm.Get(fd).Message()
		if data := es.Get(m.errData).String(); data != "" {
			_ = grpc.SetTrailer(ctx, metadata.Pairs(ErrorDataTrailer, data))
		}
		msg := es.Get(m.errMsg).String()
		if msg == "" {
			msg = "An internal server error has occurred"
		}
		return nil, status.Error(codes.InvalidArgument, msg)
	case fd.Number() != m.respField.Number():
		s.warn("grpcgw: backend answered with the wrong member", "method", m.full, "member", string(fd.Name()))
		return nil, status.Error(codes.Internal, "unexpected response type")
	default:
		return rm.Get(fd).Message().Interface(), nil
	}
}

// callBackend calls the backend under BackendTimeout (or the client's
// shorter deadline) and checks the reply's envelope type.
func (s *Server) callBackend(ctx context.Context, m *method, env proto.Message) (resp proto.Message, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.BackendTimeout)
	defer cancel()
	if p, ok := peer.FromContext(ctx); ok {
		if ap, ok := p.Addr.(*net.TCPAddr); ok {
			ctx = rpcgw.WithClientIP(ctx, ap.IP.String())
		}
	}
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("grpcgw: backend panicked", "method", m.full, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "rpc failed, the backend failed")
		}
	}()
	resp, err = s.backend.Serve(ctx, m.service, env)
	if err != nil {
		switch {
		case errors.Is(err, rpcgw.ErrUnavailable):
			s.warn("grpcgw: backend unavailable", "method", m.full, "error", err)
			return nil, status.Error(codes.Unavailable, "rpc failed, "+clip(err.Error()))
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, status.Errorf(codes.DeadlineExceeded, "rpc failed, context deadline exceeded (the backend did not answer %s in time)", m.full)
		case errors.Is(err, context.Canceled) || ctx.Err() != nil:
			return nil, status.Error(codes.Canceled, "rpc failed, the call was cancelled")
		}
		s.warn("grpcgw: backend failed", "method", m.full, "error", err)
		return nil, status.Error(codes.Internal, "rpc failed, "+clip(err.Error()))
	}
	if resp == nil || !resp.ProtoReflect().IsValid() {
		return nil, status.Error(codes.Internal, "rpc failed, the backend returned no response")
	}
	if name := resp.ProtoReflect().Descriptor().FullName(); name != m.respName {
		return nil, status.Errorf(codes.Internal, "rpc failed, the backend returned %s, not %s", name, m.respName)
	}
	return resp, nil
}

func clip(s string) string {
	if len(s) > 256 {
		return s[:253] + "..."
	}
	return s
}

func (s *Server) warn(msg string, args ...any) { s.warns.Warn(s.log, msg, args...) }
