package amqp

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	broadcastpb "github.com/emberchain/ember/proto/koinos/broadcast"
	"github.com/emberchain/ember/rpcgw"
)

// The reference set is older than the koinos-proto Ember follows
// (KOINOS.md §1.6, §2.2): these fields were added since, and one type moved
// package with the same fields. Both changes are wire-compatible.
var (
	newerKoinos = map[protoreflect.FullName]bool{
		"koinos.rpc.mempool.mempool_request.get_pending_transactions_by_id":   true,
		"koinos.rpc.mempool.mempool_response.get_pending_transactions_by_id":  true,
		"koinos.broadcast.transaction_accepted.system_disk_storage_used":      true,
		"koinos.broadcast.transaction_accepted.system_network_bandwidth_used": true,
		"koinos.broadcast.transaction_accepted.system_compute_bandwidth_used": true,
		"koinos.mempool.pending_transaction.system_disk_storage_used":         true,
		"koinos.mempool.pending_transaction.system_network_bandwidth_used":    true,
		"koinos.mempool.pending_transaction.system_compute_bandwidth_used":    true,
	}
	movedInKoinos = map[protoreflect.FullName]protoreflect.FullName{
		"koinos.mempool.pending_transaction": "koinos.rpc.mempool.pending_transaction",
	}
)

// TestEnvelopesMatchKoinos checks the messages that travel on the bus — the
// seven services' request and response envelopes and every message they
// reach, and the broadcast messages — against Koinos's descriptors, field by
// field: name, number, kind, cardinality, message or enum type, oneof, and
// the messages the fields hold, recursively. The
// reference is the descriptor set Koinos's JSON-RPC gateway loads
// (../shared/reference/koinos_descriptors.pb beside the clone).
func TestEnvelopesMatchKoinos(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "reference", "koinos_descriptors.pb")
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the reference descriptors are required in CI: %v", err)
		}
		t.Skipf("reference descriptors not found: %v", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	ref, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	var roots []protoreflect.MessageDescriptor
	for _, s := range rpcgw.KoinosServices() {
		roots = append(roots, s.Request.ProtoReflect().Descriptor(), s.Response.ProtoReflect().Descriptor())
	}
	bf := broadcastpb.File_koinos_broadcast_broadcast_proto.Messages()
	for i := 0; i < bf.Len(); i++ {
		roots = append(roots, bf.Get(i))
	}
	seen := map[protoreflect.FullName]bool{}
	var check func(ours, theirs protoreflect.MessageDescriptor)
	check = func(ours, theirs protoreflect.MessageDescriptor) {
		if seen[ours.FullName()] {
			return
		}
		seen[ours.FullName()] = true
		of, tf := ours.Fields(), theirs.Fields()
		for i := 0; i < of.Len(); i++ {
			if f := of.Get(i); tf.ByNumber(f.Number()) == nil && !newerKoinos[f.FullName()] {
				t.Errorf("%s: field %d (%s) is not in Koinos's descriptors", ours.FullName(), f.Number(), f.Name())
			}
		}
		for i := 0; i < tf.Len(); i++ {
			want := tf.Get(i)
			got := of.ByNumber(want.Number())
			if got == nil {
				t.Errorf("%s: no field %d (%s)", ours.FullName(), want.Number(), want.Name())
				continue
			}
			if got.Name() != want.Name() || got.Kind() != want.Kind() || got.Cardinality() != want.Cardinality() || got.HasPresence() != want.HasPresence() {
				t.Errorf("%s.%s: %s %v %v presence %v; Koinos: %s %v %v presence %v", ours.FullName(), got.Name(),
					got.Name(), got.Cardinality(), got.Kind(), got.HasPresence(), want.Name(), want.Cardinality(), want.Kind(), want.HasPresence())
			}
			if (got.Enum() == nil) != (want.Enum() == nil) || got.Enum() != nil && got.Enum().FullName() != want.Enum().FullName() {
				t.Errorf("%s.%s: enum type differs", ours.FullName(), got.Name())
			}
			goo, woo := got.ContainingOneof(), want.ContainingOneof()
			if (goo == nil) != (woo == nil) || goo != nil && goo.Name() != woo.Name() {
				t.Errorf("%s.%s: oneof differs", ours.FullName(), got.Name())
			}
			if (got.Message() == nil) != (want.Message() == nil) {
				t.Errorf("%s.%s: message type differs", ours.FullName(), got.Name())
				continue
			}
			if got.Message() != nil {
				if gn, wn := got.Message().FullName(), want.Message().FullName(); gn != wn && movedInKoinos[gn] != wn {
					t.Errorf("%s.%s: type %s; Koinos: %s", ours.FullName(), got.Name(), gn, wn)
				}
				check(got.Message(), want.Message())
			}
		}
	}
	for _, r := range roots {
		d, err := ref.FindDescriptorByName(r.FullName())
		if err != nil {
			t.Errorf("%s: not in Koinos's descriptors", r.FullName())
			continue
		}
		check(r, d.(protoreflect.MessageDescriptor))
	}
	if len(seen) < 50 {
		t.Fatalf("only %d messages checked", len(seen))
	}
	t.Logf("%d messages match Koinos's descriptors", len(seen))
}
