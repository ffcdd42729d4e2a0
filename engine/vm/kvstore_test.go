package vm

import (
	"encoding/json"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/emberchain/ember/internal/sdkas"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// abiContract calls an SDK contract the way a wallet does with its ABI
// alone (internal/sdkas's abi/<name>.abi): entry points, argument and
// result types come from the ABI file, messages are built with dynamicpb
// from its "types". It checks the committed ABI against the contract.
type abiContract struct {
	t       *testing.T
	files   *protoregistry.Files
	methods map[string]abiMethod
}

// abiMethod is what koilib reads of an ABI method.
type abiMethod struct {
	Argument   string `json:"argument"`
	Return     string `json:"return"`
	EntryPoint uint32 `json:"entry_point"`
	ReadOnly   bool   `json:"read_only"`
}

func newABIContract(t *testing.T, name string) *abiContract {
	t.Helper()
	raw := sdkas.ABI(t, name)
	var abi struct {
		Methods map[string]abiMethod `json:"methods"`
	}
	if err := json.Unmarshal(raw, &abi); err != nil {
		t.Fatal(err)
	}
	files, err := sdkas.ABITypes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &abiContract{t: t, files: files, methods: abi.Methods}
}

// message builds a message of the ABI's types with string, bytes and bool
// fields set.
func (c *abiContract) message(typ string, fields map[string]any) *dynamicpb.Message {
	c.t.Helper()
	d, err := c.files.FindDescriptorByName(protoreflect.FullName(typ))
	if err != nil {
		c.t.Fatalf("type %s: %v", typ, err)
	}
	m := dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
	for name, v := range fields {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			c.t.Fatalf("%s has no field %s", typ, name)
		}
		m.Set(fd, protoreflect.ValueOf(v))
	}
	return m
}

// decode reads data as a message of type typ.
func (c *abiContract) decode(typ string, data []byte) *dynamicpb.Message {
	c.t.Helper()
	m := c.message(typ, nil)
	if err := proto.Unmarshal(data, m); err != nil {
		c.t.Fatalf("%x as %s: %v", data, typ, err)
	}
	return m
}

// call prepares a call of method with arguments, as koilib would.
func (c *abiContract) call(method string, args map[string]any) func(*Call) {
	c.t.Helper()
	m, ok := c.methods[method]
	if !ok {
		c.t.Fatalf("the ABI has no method %s", method)
	}
	// Deterministic: without it a dynamicpb message's fields come out in
	// any order, and the contract's decoder charges a different compute.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.message(m.Argument, args))
	if err != nil {
		c.t.Fatal(err)
	}
	return func(call *Call) { call.EntryPoint, call.Args, call.ReadOnly = m.EntryPoint, b, m.ReadOnly }
}

func field(m *dynamicpb.Message, name string) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name)))
}

// TestSDKKVStore drives the kvstore contract through its ABI: put, get and
// remove with their events, a miss, a write refused in a read-only call;
// the same compute on the compiler and the interpreter.
func TestSDKKVStore(t *testing.T) {
	code := sdkContract(t, "kvstore")
	abi := newABIContract(t, "kvstore")
	var computes [2][]uint64
	for i, cfg := range []Config{{}, {Interpreter: true}} {
		v := newVM(t, cfg)
		h := newMemHost(v)
		call := func(method string, args map[string]any) (*Result, error) {
			t.Helper()
			res, err := run(t, v, h, code, abi.call(method, args))
			computes[i] = append(computes[i], res.Compute)
			return res, err
		}
		get := func(key string) (value string, found bool) {
			t.Helper()
			res, err := call("get", map[string]any{"key": key})
			if err != nil {
				t.Fatalf("get %q: %v", key, err)
			}
			r := abi.decode(abi.methods["get"].Return, res.Value)
			return string(field(r, "value").Bytes()), field(r, "found").Bool()
		}
		if v, found := get("greeting"); found || v != "" {
			t.Fatalf("get before put: %q %v", v, found)
		}
		res, err := call("put", map[string]any{"key": "greeting", "value": []byte("hello")})
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		if len(res.Events) != 1 || res.Events[0].Name != "kvstore.put_event" || len(res.Events[0].Impacted) != 0 {
			t.Fatalf("put events %v", res.Events)
		}
		if ev := abi.decode("kvstore.put_event", res.Events[0].Data); field(ev, "key").String() != "greeting" || string(field(ev, "value").Bytes()) != "hello" {
			t.Fatalf("put event data %v", ev)
		}
		if v, found := get("greeting"); !found || v != "hello" {
			t.Fatalf("get after put: %q %v", v, found)
		}
		_, err = run(t, v, h, code, abi.call("put", map[string]any{"key": "k"}), func(c *Call) { c.ReadOnly = true })
		if codeOf(err) != chainpb.ErrorCode_read_only_context {
			t.Fatalf("put in a read-only call: %v", err)
		}
		for n, wantEvents := range []int{1, 0} {
			res, err := call("remove", map[string]any{"key": "greeting"})
			if err != nil || len(res.Events) != wantEvents {
				t.Fatalf("remove %d: %v, events %v", n+1, err, res.Events)
			}
			if wantEvents == 1 && (res.Events[0].Name != "kvstore.remove_event" || field(abi.decode("kvstore.remove_event", res.Events[0].Data), "key").String() != "greeting") {
				t.Fatalf("remove event %v", res.Events[0])
			}
		}
		if v, found := get("greeting"); found || v != "" {
			t.Fatalf("get after remove: %q %v", v, found)
		}
	}
	if !slices.Equal(computes[0], computes[1]) || slices.Contains(computes[0], 0) {
		t.Fatalf("compute per call: compiler %v, interpreter %v", computes[0], computes[1])
	}
}
