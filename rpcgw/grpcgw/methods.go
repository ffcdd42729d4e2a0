package grpcgw

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	emberservices "github.com/emberchain/ember/proto/ember/services"
	koinosservices "github.com/emberchain/ember/proto/koinos/services"
	"github.com/emberchain/ember/rpcgw"
)

// A gRPC method carries one Koinos request message, e.g.
// koinos.rpc.chain.get_head_info_request; the backend takes it wrapped in
// its service's envelope (koinos.rpc.chain.chain_request, member
// get_head_info) and answers with the response envelope. The routing is read
// from the descriptors once, in New: a method is served by the envelope that
// holds its request message, so nothing here lists methods by hand.

// grpcService is one gRPC service the server offers: the generated
// ServiceDesc (its exact name and method names) and its descriptor.
type grpcService struct {
	desc *grpc.ServiceDesc
	sd   protoreflect.ServiceDescriptor
}

// grpcServices are koinos.services.koinos, Koinos's, and
// ember.services.mempool, the extension.
func grpcServices() []grpcService {
	return []grpcService{
		{&koinosservices.Koinos_ServiceDesc, koinosservices.File_koinos_services_services_proto.Services().ByName("koinos")},
		{&emberservices.Mempool_ServiceDesc, emberservices.File_ember_services_mempool_proto.Services().ByName("mempool")},
	}
}

const errorStatus = "koinos.rpc.error_status"

// method is one served gRPC method and its place in the envelopes.
type method struct {
	full     string // "chain.get_head_info": metrics and messages, as JSON-RPC names it
	grpcName string // "/koinos.services.koinos/get_head_info"
	service  string // "chain": the backend's service argument
	refused  bool

	envType   protoreflect.MessageType // the request envelope
	reqField  protoreflect.FieldDescriptor
	reqName   protoreflect.FullName // koinos.rpc.chain.get_head_info_request
	respName  protoreflect.FullName // the response envelope
	respOneof protoreflect.OneofDescriptor
	respField protoreflect.FieldDescriptor
	errField  protoreflect.FieldDescriptor
	errMsg    protoreflect.FieldDescriptor // error_status.message
	errData   protoreflect.FieldDescriptor // error_status.data
}

// decode reads a request message into a new envelope. The error says what
// was expected; it is the client's fault.
func (m *method) decode(b []byte) (proto.Message, error) {
	env := m.envType.New()
	params := env.Mutable(m.reqField).Message()
	if err := (proto.UnmarshalOptions{}).Unmarshal(b, params.Interface()); err != nil {
		return nil, fmt.Errorf("the request is not a valid %s: %v", m.reqName, err)
	}
	return env.Interface(), nil
}

// buildMethods routes every method of grpcServices whose request message is
// in one of svcs' envelopes, keyed by gRPC method name. Methods whose
// service is not in svcs are not served (grpc-go answers Unimplemented).
func buildMethods(svcs []rpcgw.Service, refused []string) (map[string]*method, error) {
	prefixes := make([]string, len(refused))
	for i, p := range refused {
		if !strings.HasPrefix(p, "koinos.rpc.") {
			p = "koinos.rpc." + p
		}
		prefixes[i] = p
	}
	byPkg := map[protoreflect.FullName]rpcgw.Service{}
	for _, s := range svcs {
		if s.Request == nil || s.Response == nil {
			return nil, fmt.Errorf("grpcgw: service %s: request and response envelopes are required", s.Name)
		}
		byPkg[s.Request.ProtoReflect().Descriptor().ParentFile().Package()] = s
	}
	out := map[string]*method{}
	for _, gs := range grpcServices() {
		mds := gs.sd.Methods()
		for i := 0; i < mds.Len(); i++ {
			md := mds.Get(i)
			in := md.Input()
			s, ok := byPkg[in.ParentFile().Package()]
			if !ok {
				continue
			}
			m, err := route(s, in, md.Output())
			if err != nil {
				return nil, fmt.Errorf("grpcgw: %s.%s: %w", gs.sd.FullName(), md.Name(), err)
			}
			m.grpcName = "/" + string(gs.sd.FullName()) + "/" + string(md.Name())
			qualified := string(in.ParentFile().Package()) + "." + string(m.reqField.Name())
			for _, p := range prefixes {
				if strings.HasPrefix(qualified, p) {
					m.refused = true
				}
			}
			out[m.grpcName] = m
		}
	}
	return out, nil
}

// route finds the envelope members of a method's request and response.
func route(s rpcgw.Service, in, out protoreflect.MessageDescriptor) (*method, error) {
	envType := s.Request.ProtoReflect().Type()
	respDesc := s.Response.ProtoReflect().Descriptor()
	m := &method{service: s.Name, envType: envType, reqName: in.FullName(), respName: respDesc.FullName()}
	reqFields := envType.Descriptor().Fields()
	for i := 0; i < reqFields.Len(); i++ {
		if fd := reqFields.Get(i); fd.ContainingOneof() != nil && fd.Message() != nil && fd.Message().FullName() == in.FullName() {
			m.reqField = fd
		}
	}
	if m.reqField == nil {
		return nil, fmt.Errorf("%s is not a member of %s", in.FullName(), envType.Descriptor().FullName())
	}
	m.full = s.Name + "." + string(m.reqField.Name())
	m.respField = respDesc.Fields().ByName(m.reqField.Name())
	if m.respField == nil || m.respField.ContainingOneof() == nil || m.respField.Message() == nil || m.respField.Message().FullName() != out.FullName() {
		return nil, fmt.Errorf("%s has no member %s of type %s", respDesc.FullName(), m.reqField.Name(), out.FullName())
	}
	m.respOneof = m.respField.ContainingOneof()
	respFields := m.respOneof.Fields()
	for i := 0; i < respFields.Len(); i++ {
		if fd := respFields.Get(i); fd.Message() != nil && fd.Message().FullName() == errorStatus {
			m.errField = fd
			m.errMsg = fd.Message().Fields().ByName("message")
			m.errData = fd.Message().Fields().ByName("data")
		}
	}
	if m.errField == nil || m.errMsg == nil || m.errData == nil {
		return nil, fmt.Errorf("%s has no %s member", respDesc.FullName(), errorStatus)
	}
	return m, nil
}
