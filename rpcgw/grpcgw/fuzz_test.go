package grpcgw

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw"
)

// FuzzDecode feeds arbitrary bytes to every method's request decoding: it
// must never panic, must fail with a message naming the expected type, and
// what it accepts must be in the envelope member the backend reads.
func FuzzDecode(f *testing.F) {
	ms, err := buildMethods(rpcgw.KoinosServices(), nil)
	if err != nil {
		f.Fatal(err)
	}
	names := make([]string, 0, len(ms))
	for n := range ms {
		names = append(names, n)
	}
	slices.Sort(names)
	tx, _ := proto.Marshal(&chainrpc.SubmitTransactionRequest{Transaction: &protocol.Transaction{Id: []byte{1, 2}, Header: &protocol.TransactionHeader{Nonce: []byte{8, 1}}}, Broadcast: true})
	f.Add(uint8(0), []byte{})
	f.Add(uint8(5), tx)
	f.Add(uint8(3), []byte{0x08, 0x96, 0x01})
	f.Add(uint8(9), []byte{0x0a, 0x7f})
	f.Fuzz(func(t *testing.T, i uint8, b []byte) {
		m := ms[names[int(i)%len(names)]]
		env, err := m.decode(b)
		if err != nil {
			if !strings.Contains(err.Error(), string(m.reqName)) {
				t.Fatalf("%s: error %q does not name %s", m.full, err, m.reqName)
			}
			return
		}
		r := env.ProtoReflect()
		if fd := r.WhichOneof(m.reqField.ContainingOneof()); fd == nil || fd.Number() != m.reqField.Number() {
			t.Fatalf("%s: decoded into the wrong member", m.full)
		}
		if _, err := proto.Marshal(env); err != nil {
			t.Fatalf("%s: a decoded request does not encode again: %v", m.full, err)
		}
	})
}
