package grpcgw

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// rawRequest is a request message as received, not yet decoded.
//
// grpc-go decodes a request before the handler runs and answers a message
// that does not decode with Internal, as if the server were at fault. The
// server's codec therefore hands request bodies over undecoded, and the
// handler decodes them itself (method.decode) and answers InvalidArgument
// with what was wrong.
type rawRequest struct{ b []byte }

// codec is grpc-go's proto codec, except that it fills a *rawRequest with
// the bytes received. Responses, and the reflection and health services'
// messages, go through the proto codec unchanged.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2(protocodec.Name)} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawRequest); ok {
		// Materialize copies: data is freed when Unmarshal returns.
		r.b = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// Name is the proto codec's: clients send application/grpc+proto (or
// application/grpc, which means the same).
func (c codec) Name() string { return protocodec.Name }
