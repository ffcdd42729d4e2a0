package amqp

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
)

// FuzzRPCDelivery drives the request path a delivery takes — content type,
// reply_to, expiration and timestamp checks, envelope decoding, refusal,
// the backend call, reply encoding — with arbitrary properties and bodies.
// It must never panic, and every request it does not reject or drop must
// get a response envelope of the service's type.
func FuzzRPCDelivery(f *testing.F) {
	s, err := NewServer(ServerConfig{URL: "amqp://guest:guest@127.0.0.1:1/"}, &fakeBackend{height: 1})
	if err != nil {
		f.Fatal(err)
	}
	head, _ := proto.Marshal(&chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}})
	block, _ := proto.Marshal(&chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_SubmitBlock{SubmitBlock: &chainrpc.SubmitBlockRequest{}}})
	mp, _ := proto.Marshal(&mempoolrpc.MempoolRequest{Request: &mempoolrpc.MempoolRequest_GetPendingTransactions{GetPendingTransactions: &mempoolrpc.GetPendingTransactionsRequest{Limit: 10}}})
	f.Add(uint8(0), ContentType, "reply", "1000", int64(0), head)
	f.Add(uint8(0), ContentType, "reply", "1000", int64(-3600), head)
	f.Add(uint8(0), ContentType, "reply", "", int64(0), block)
	f.Add(uint8(1), ContentType, "reply", "5", int64(0), mp)
	f.Add(uint8(2), "text/plain", "", "x", int64(1), []byte{0xff, 0x01})
	f.Add(uint8(3), ContentType, "r", "18446744073709551615", int64(1<<40), []byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, svc uint8, ct, replyTo, exp string, tsOffset int64, body []byte) {
		sv := s.svcs[int(svc)%len(s.svcs)]
		now := time.Unix(1_800_000_000, 0)
		in := inbound{contentType: ct, replyTo: replyTo, expiration: exp, body: body}
		if tsOffset != 0 {
			in.timestamp = now.Add(time.Duration(tsOffset%(1<<33)) * time.Second)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		v, reply, why := s.process(ctx, sv, in, now)
		switch v {
		case verdictReply:
			resp := sv.respType.New()
			if err := proto.Unmarshal(reply, resp.Interface()); err != nil {
				t.Fatalf("reply does not decode: %v", err)
			}
			if resp.WhichOneof(sv.respOneof) == nil {
				t.Fatalf("empty response envelope for %x", body)
			}
		case verdictReject, verdictExpired:
			if why == "" {
				t.Fatal("no reason")
			}
			if ct == ContentType && replyTo != "" && v == verdictReject && unmarshal(body, sv.reqType.New().Interface()) == nil {
				t.Fatalf("a decodable request was rejected: %s", why)
			}
		}
	})
}
