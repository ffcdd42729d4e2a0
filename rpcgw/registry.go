package rpcgw

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The translation tables. They are read from the envelopes' descriptors once,
// in New, so that the request path does a map lookup and no string work: the
// method name from the JSON body indexes methods directly (a map index by
// string(bytes) does not allocate).

const (
	reservedRPC = "koinos.rpc.reserved_rpc"
	errorStatus = "koinos.rpc.error_status"
)

type service struct {
	name      string // "chain"
	pkg       string // "koinos.rpc.chain"
	reqType   protoreflect.MessageType
	respName  protoreflect.FullName
	respOneof protoreflect.OneofDescriptor
	errField  protoreflect.FieldDescriptor
	errMsg    protoreflect.FieldDescriptor // error_status.message
	errData   protoreflect.FieldDescriptor // error_status.data
	methods   []string                     // served method names, sorted, for error messages
}

type method struct {
	svc       *service
	name      string // "get_head_info"
	full      string // "chain.get_head_info"
	reqField  protoreflect.FieldDescriptor
	respField protoreflect.FieldDescriptor
	paramName protoreflect.FullName // koinos.rpc.chain.get_head_info_request
	refused   bool
	// large: the method's last answer was over half a connection's buffer,
	// so the next is sized first (bodyPool.roomFor). Small-answer methods
	// never pay for the sizing.
	large atomic.Bool
}

type registry struct {
	methods  map[string]*method  // by "svc.method" and "koinos.rpc.svc.method"
	services map[string]*service // by "svc" and "koinos.rpc.svc"
	names    []string            // service names, for error messages
}

func newRegistry(svcs []Service, refused []string) (*registry, error) {
	r := &registry{methods: map[string]*method{}, services: map[string]*service{}}
	prefixes := make([]string, len(refused))
	for i, p := range refused {
		if !strings.HasPrefix(p, "koinos.rpc.") {
			p = "koinos.rpc." + p
		}
		prefixes[i] = p
	}
	for _, cs := range svcs {
		s, ms, err := buildService(cs)
		if err != nil {
			return nil, err
		}
		for _, key := range []string{s.name, s.pkg} {
			if _, dup := r.services[key]; dup {
				return nil, fmt.Errorf("rpcgw: service %q configured twice", key)
			}
			r.services[key] = s
		}
		r.names = append(r.names, s.name)
		for _, m := range ms {
			qualified := s.pkg + "." + m.name
			for _, p := range prefixes {
				if strings.HasPrefix(qualified, p) {
					m.refused = true
				}
			}
			r.methods[m.full] = m
			r.methods[qualified] = m
		}
	}
	return r, nil
}

// buildService reads a service's methods from its envelopes: every member of
// the request oneof except reserved_rpc is a method, and the response oneof
// must hold a member of the same name and an error_status member.
func buildService(cs Service) (*service, []*method, error) {
	if cs.Name == "" || strings.Contains(cs.Name, ".") {
		return nil, nil, fmt.Errorf("rpcgw: service name %q must be a single non-empty word", cs.Name)
	}
	if cs.Request == nil || cs.Response == nil {
		return nil, nil, fmt.Errorf("rpcgw: service %s: request and response envelopes are required", cs.Name)
	}
	reqType := cs.Request.ProtoReflect().Type()
	reqDesc := reqType.Descriptor()
	respDesc := cs.Response.ProtoReflect().Descriptor()
	reqOneof, err := onlyOneof(reqDesc)
	if err != nil {
		return nil, nil, fmt.Errorf("rpcgw: service %s: %w", cs.Name, err)
	}
	respOneof, err := onlyOneof(respDesc)
	if err != nil {
		return nil, nil, fmt.Errorf("rpcgw: service %s: %w", cs.Name, err)
	}
	s := &service{
		name:      cs.Name,
		pkg:       string(reqDesc.ParentFile().Package()),
		reqType:   reqType,
		respName:  respDesc.FullName(),
		respOneof: respOneof,
	}
	if s.pkg == "" {
		s.pkg = "koinos.rpc." + cs.Name
	}
	respFields := respOneof.Fields()
	for i := 0; i < respFields.Len(); i++ {
		fd := respFields.Get(i)
		if fd.Message() != nil && fd.Message().FullName() == errorStatus {
			s.errField = fd
			s.errMsg = fd.Message().Fields().ByName("message")
			s.errData = fd.Message().Fields().ByName("data")
		}
	}
	if s.errField == nil || s.errMsg == nil || s.errData == nil {
		return nil, nil, fmt.Errorf("rpcgw: service %s: %s has no %s member", cs.Name, respDesc.FullName(), errorStatus)
	}
	var ms []*method
	reqFields := reqOneof.Fields()
	for i := 0; i < reqFields.Len(); i++ {
		fd := reqFields.Get(i)
		if fd.Message() == nil {
			return nil, nil, fmt.Errorf("rpcgw: service %s: request member %s is not a message", cs.Name, fd.Name())
		}
		if fd.Message().FullName() == reservedRPC {
			continue
		}
		rf := respFields.ByName(fd.Name())
		if rf == nil || rf.Message() == nil {
			return nil, nil, fmt.Errorf("rpcgw: service %s: method %s has no response member in %s", cs.Name, fd.Name(), respDesc.FullName())
		}
		ms = append(ms, &method{
			svc:       s,
			name:      string(fd.Name()),
			full:      cs.Name + "." + string(fd.Name()),
			reqField:  fd,
			respField: rf,
			paramName: fd.Message().FullName(),
		})
		s.methods = append(s.methods, string(fd.Name()))
	}
	slices.Sort(s.methods)
	return s, ms, nil
}

func onlyOneof(md protoreflect.MessageDescriptor) (protoreflect.OneofDescriptor, error) {
	var found protoreflect.OneofDescriptor
	oo := md.Oneofs()
	for i := 0; i < oo.Len(); i++ {
		if o := oo.Get(i); !o.IsSynthetic() {
			if found != nil {
				return nil, fmt.Errorf("%s has more than one oneof", md.FullName())
			}
			found = o
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s has no oneof", md.FullName())
	}
	return found, nil
}

// lookup finds a method by name. On a miss it returns a message saying what
// is served, for the error's data.
func (r *registry) lookup(name []byte) (*method, string) {
	if m := r.methods[string(name)]; m != nil {
		return m, ""
	}
	n := string(name)
	dot := strings.LastIndexByte(n, '.')
	if dot <= 0 || dot == len(n)-1 {
		return nil, fmt.Sprintf("method %q is not of the form \"service.method\", e.g. \"chain.get_head_info\"", clip(n))
	}
	s := r.services[n[:dot]]
	if s == nil {
		return nil, fmt.Sprintf("unknown service %q; served: %s", clip(n[:dot]), strings.Join(r.names, ", "))
	}
	return nil, fmt.Sprintf("service %s has no method %q; it has: %s", s.name, clip(n[dot+1:]), strings.Join(s.methods, ", "))
}

// clip bounds client-supplied text echoed in error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
