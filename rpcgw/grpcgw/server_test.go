package grpcgw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	emberservices "github.com/emberchain/ember/proto/ember/services"
	rpcpb "github.com/emberchain/ember/proto/koinos/rpc"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
	koinosservices "github.com/emberchain/ember/proto/koinos/services"
	"github.com/emberchain/ember/rpcgw"
)

// backendFunc is a Backend in a function.
type backendFunc func(ctx context.Context, service string, req proto.Message) (proto.Message, error)

func (f backendFunc) Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
	return f(ctx, service, req)
}

// headBackend answers chain.get_head_info with height 7 and every other
// call with an error_status naming what it received.
var headBackend = backendFunc(func(_ context.Context, service string, req proto.Message) (proto.Message, error) {
	if r, ok := req.(*chainrpc.ChainRequest); ok && r.GetGetHeadInfo() != nil {
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoResponse{LastIrreversibleBlock: 7}}}, nil
	}
	return nil, fmt.Errorf("unexpected %s call", service)
})

// startServer serves cfg on a loopback port and returns a client
// connection to it.
func startServer(t *testing.T, cfg Config, b rpcgw.Backend) (*Server, *grpc.ClientConn) {
	t.Helper()
	s, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	for deadline := time.Now().Add(5 * time.Second); s.Addr() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Serve did not register its listener")
		}
	}
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, rpcgw.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s, conn
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRouting checks that every method of Koinos's service and of the
// extension is routed to the envelope member of the same name, and that the
// generated descriptions agree with the descriptors.
func TestRouting(t *testing.T) {
	ms, err := buildMethods(rpcgw.KoinosServices(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, sd := range []grpc.ServiceDesc{koinosservices.Koinos_ServiceDesc, emberservices.Mempool_ServiceDesc} {
		for _, md := range sd.Methods {
			want["/"+sd.ServiceName+"/"+md.MethodName] = md.MethodName
		}
	}
	if len(want) != 19+5 {
		t.Fatalf("%d generated methods, want 19 of Koinos and 5 of the extension", len(want))
	}
	if len(ms) != len(want) {
		t.Fatalf("%d methods routed, want %d", len(ms), len(want))
	}
	for name, short := range want {
		m := ms[name]
		if m == nil {
			t.Errorf("%s not routed", name)
			continue
		}
		if string(m.reqField.Name()) != short || !strings.HasSuffix(m.full, "."+short) {
			t.Errorf("%s routed to %s (%s)", name, m.full, m.reqField.Name())
		}
	}
	if m := ms["/koinos.services.koinos/get_pending_transactions"]; m.service != "mempool" {
		t.Errorf("get_pending_transactions goes to %q", m.service)
	}
	refused, _ := buildMethods(rpcgw.KoinosServices(), rpcgw.DefaultRefusedMethods)
	for name, m := range refused {
		r := name == koinosservices.Koinos_SubmitBlock_FullMethodName || name == koinosservices.Koinos_InvokeSystemCall_FullMethodName
		if m.refused != r {
			t.Errorf("%s refused=%v by default", name, m.refused)
		}
	}
}

func TestAnswersAndErrors(t *testing.T) {
	var panicked bool
	b := backendFunc(func(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
		switch r := req.(type) {
		case *chainrpc.ChainRequest:
			switch {
			case r.GetGetHeadInfo() != nil:
				return headBackend(ctx, service, req)
			case r.GetGetChainId() != nil:
				return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_Error{Error: &rpcpb.ErrorStatus{Message: "chain says no", Data: `{"code":4}`}}}, nil
			case r.GetGetForkHeads() != nil:
				return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetResourceLimits{}}, nil
			case r.GetGetResourceLimits() != nil:
				return nil, fmt.Errorf("%w: broker down", rpcgw.ErrUnavailable)
			case r.GetGetAccountRc() != nil:
				<-ctx.Done()
				return nil, ctx.Err()
			case r.GetGetAccountNonce() != nil:
				panicked = true
				panic("backend bug")
			case r.GetReadContract() != nil:
				return nil, errors.New("disk on fire")
			case r.GetSubmitTransaction() != nil:
				return &mempoolrpc.MempoolResponse{}, nil
			}
		case *mempoolrpc.MempoolRequest:
			if r.GetGetPendingTransactionCount() != nil {
				return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_GetPendingTransactionCount{
					GetPendingTransactionCount: &mempoolrpc.GetPendingTransactionCountResponse{Count: 3}}}, nil
			}
		}
		return nil, fmt.Errorf("unexpected %s call", service)
	})
	s, conn := startServer(t, Config{BackendTimeout: 200 * time.Millisecond}, b)
	k := koinosservices.NewKoinosClient(conn)
	mp := emberservices.NewMempoolClient(conn)

	head, err := k.GetHeadInfo(callCtx(t), &chainrpc.GetHeadInfoRequest{})
	if err != nil || head.LastIrreversibleBlock != 7 {
		t.Fatalf("get_head_info: %v %v", head, err)
	}
	cnt, err := mp.GetPendingTransactionCount(callCtx(t), &mempoolrpc.GetPendingTransactionCountRequest{})
	if err != nil || cnt.Count != 3 {
		t.Fatalf("extension get_pending_transaction_count: %v %v", cnt, err)
	}

	var trailer metadata.MD
	_, err = k.GetChainId(callCtx(t), &chainrpc.GetChainIdRequest{}, grpc.Trailer(&trailer))
	wantStatus(t, "error_status", err, codes.InvalidArgument, "chain says no")
	if got := trailer.Get(ErrorDataTrailer); len(got) != 1 || got[0] != `{"code":4}` {
		t.Errorf("error data trailer: %q", got)
	}

	cases := []struct {
		name string
		call func(ctx context.Context) error
		code codes.Code
		msg  string
	}{
		{"wrong member", func(ctx context.Context) error {
			_, err := k.GetForkHeads(ctx, &chainrpc.GetForkHeadsRequest{})
			return err
		}, codes.Internal, "unexpected response type"},
		{"wrong envelope", func(ctx context.Context) error {
			_, err := k.SubmitTransaction(ctx, &chainrpc.SubmitTransactionRequest{})
			return err
		}, codes.Internal, "not koinos.rpc.chain.chain_response"},
		{"unavailable", func(ctx context.Context) error {
			_, err := k.GetResourceLimits(ctx, &chainrpc.GetResourceLimitsRequest{})
			return err
		}, codes.Unavailable, "broker down"},
		{"backend deadline", func(ctx context.Context) error {
			_, err := k.GetAccountRc(ctx, &chainrpc.GetAccountRcRequest{})
			return err
		}, codes.DeadlineExceeded, "context deadline exceeded"},
		{"panic", func(ctx context.Context) error {
			_, err := k.GetAccountNonce(ctx, &chainrpc.GetAccountNonceRequest{})
			return err
		}, codes.Internal, "the backend failed"},
		{"backend error", func(ctx context.Context) error {
			_, err := k.ReadContract(ctx, &chainrpc.ReadContractRequest{})
			return err
		}, codes.Internal, "rpc failed, disk on fire"},
		{"refused", func(ctx context.Context) error {
			_, err := k.SubmitBlock(ctx, &chainrpc.SubmitBlockRequest{})
			return err
		}, codes.PermissionDenied, "chain.submit_block is not served"},
		{"refused syscall", func(ctx context.Context) error {
			_, err := k.InvokeSystemCall(ctx, &chainrpc.InvokeSystemCallRequest{})
			return err
		}, codes.PermissionDenied, "chain.invoke_system_call is not served"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantStatus(t, c.name, c.call(callCtx(t)), c.code, c.msg) })
	}
	if !panicked || s.Stats().Panics != 1 {
		t.Errorf("panic not counted: %+v", s.Stats())
	}
	if st := s.Stats(); st.Calls != 11 || st.CallErrors != 9 {
		t.Errorf("stats: %+v", st)
	}
}

func wantStatus(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Errorf("%s: got %v %q, want %v containing %q", what, st.Code(), st.Message(), code, msg)
	}
}

// rawCodec sends and receives bytes as they are: a client that can send a
// request that is not a valid message.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestBadInput sends bytes that are not the method's request message and
// requests over the size limit: InvalidArgument with what was wrong, and
// ResourceExhausted, never a panic or Internal.
func TestBadInput(t *testing.T) {
	_, conn := startServer(t, Config{MaxRecvBytes: 1024}, headBackend)
	for _, c := range []struct {
		name string
		body []byte
		code codes.Code
		msg  string
	}{
		{"truncated varint", []byte{0x08}, codes.InvalidArgument, "not a valid koinos.rpc.chain.get_head_info_request"},
		{"bad wire type", []byte{0x0f, 0x01}, codes.InvalidArgument, "not a valid koinos.rpc.chain.get_head_info_request"},
		{"length past end", []byte{0x0a, 0x7f, 0x01}, codes.InvalidArgument, "not a valid"},
		{"too large", make([]byte, 2048), codes.ResourceExhausted, "larger than max"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out []byte
			err := conn.Invoke(callCtx(t), koinosservices.Koinos_GetHeadInfo_FullMethodName, &c.body, &out, grpc.ForceCodecV2(rawCodec{}))
			wantStatus(t, c.name, err, c.code, c.msg)
		})
	}
	// Unknown fields are kept by proto3 decoding and ignored, as Koinos's
	// C++ gateway does.
	var out []byte
	body := []byte{0xf8, 0x01, 0x05}
	if err := conn.Invoke(callCtx(t), koinosservices.Koinos_GetHeadInfo_FullMethodName, &body, &out, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Errorf("unknown field: %v", err)
	}
	err := conn.Invoke(callCtx(t), "/koinos.services.koinos/no_such_method", &body, &out, grpc.ForceCodecV2(rawCodec{}))
	wantStatus(t, "unknown method", err, codes.Unimplemented, "no_such_method")
}

// TestLimits: a response over the size limit, a full worker pool, a queue
// wait past its timeout, and a client deadline shorter than the backend's.
func TestLimits(t *testing.T) {
	release := make(chan struct{})
	var entered sync.WaitGroup
	b := backendFunc(func(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
		r := req.(*chainrpc.ChainRequest)
		switch {
		case r.GetGetChainId() != nil:
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetChainId{GetChainId: &chainrpc.GetChainIdResponse{ChainId: make([]byte, 4096)}}}, nil
		case r.GetGetForkHeads() != nil:
			entered.Done()
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetForkHeads{GetForkHeads: &chainrpc.GetForkHeadsResponse{}}}, nil
		case r.GetGetAccountRc() != nil:
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return headBackend(ctx, service, &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}})
	})
	s, conn := startServer(t, Config{MaxSendBytes: 1024, Workers: 1, QueueSize: 1, QueueTimeout: 100 * time.Millisecond}, b)
	k := koinosservices.NewKoinosClient(conn)

	_, err := k.GetChainId(callCtx(t), &chainrpc.GetChainIdRequest{})
	wantStatus(t, "response too large", err, codes.ResourceExhausted, "larger than max")

	// One call holds the only worker.
	entered.Add(1)
	held := make(chan error, 1)
	go func() {
		_, err := k.GetForkHeads(callCtx(t), &chainrpc.GetForkHeadsRequest{})
		held <- err
	}()
	entered.Wait()
	// The next waits in the queue and times out.
	_, err = k.GetHeadInfo(callCtx(t), &chainrpc.GetHeadInfoRequest{})
	wantStatus(t, "queue timeout", err, codes.ResourceExhausted, "no worker became free within 100ms")
	// With the queue taken, one more is refused at once.
	queued := make(chan error, 1)
	go func() {
		_, err := k.GetHeadInfo(callCtx(t), &chainrpc.GetHeadInfoRequest{})
		queued <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Queued != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_, err = k.GetHeadInfo(callCtx(t), &chainrpc.GetHeadInfoRequest{})
	wantStatus(t, "workers and queue full", err, codes.ResourceExhausted, "all 1 workers are busy")
	<-queued // it expired in the queue too; the worker is still held
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("held call: %v", err)
	}
	if st := s.Stats(); st.Rejected != 1 || st.QueueExpiry != 2 || st.Running != 0 {
		t.Errorf("stats: %+v", st)
	}

	// The client's deadline, shorter than BackendTimeout, reaches the
	// backend.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = k.GetAccountRc(ctx, &chainrpc.GetAccountRcRequest{})
	wantStatus(t, "client deadline", err, codes.DeadlineExceeded, "")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the call took %v past its 100ms deadline", d)
	}
	if _, err := k.GetHeadInfo(callCtx(t), &chainrpc.GetHeadInfoRequest{}); err != nil {
		t.Errorf("after the limits: %v", err)
	}
}

// TestHealthAndReflection: the standard health service follows
// Config.Healthy and says NOT_SERVING after Shutdown; reflection lists
// both services.
func TestHealthAndReflection(t *testing.T) {
	var mu sync.Mutex
	healthy := true
	s, conn := startServer(t, Config{Healthy: func() bool { mu.Lock(); defer mu.Unlock(); return healthy }}, headBackend)
	hc := healthpb.NewHealthClient(conn)
	waitHealth := func(service string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := hc.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: service})
			if err == nil && r.Status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health of %q: %v %v, want %v", service, r, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitHealth("", healthpb.HealthCheckResponse_SERVING)
	waitHealth("koinos.services.koinos", healthpb.HealthCheckResponse_SERVING)
	mu.Lock()
	healthy = false
	mu.Unlock()
	waitHealth("", healthpb.HealthCheckResponse_NOT_SERVING)
	waitHealth("ember.services.mempool", healthpb.HealthCheckResponse_NOT_SERVING)

	rc, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sv := range r.GetListServicesResponse().GetService() {
		names = append(names, sv.Name)
	}
	for _, want := range []string{"koinos.services.koinos", "ember.services.mempool", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lists %v, not %s", names, want)
		}
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "koinos.services.koinos"}}); err != nil {
		t.Fatal(err)
	}
	if r, err := rc.Recv(); err != nil || len(r.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("file of koinos.services.koinos: %v %v", r, err)
	}
	_ = rc.CloseSend()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workers: -1}, "Workers is -1"},
		{Config{QueueSize: -2}, "QueueSize is -2"},
		{Config{KeepaliveMinTime: -time.Second}, "keepalive times"},
		{Config{RefusedMethods: []string{""}}, "not a method name prefix"},
		{Config{Services: []rpcgw.Service{{Name: "chain"}}}, "envelopes are required"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("nil backend accepted")
	}
}
