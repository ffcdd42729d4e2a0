package p2p

import (
	"bufio"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/emberchain/ember/engine/koinos"
)

// The wire as seen from outside a node: what a tool needs to speak Ember's
// protocols with its own libp2p host (the e2e harness's byzantine peer,
// internal/e2e/byzantine). The node itself uses the unexported forms.

// The request/response protocols and the gossip topics' kinds.
const (
	ProtocolStatus protocol.ID = protoStatus
	ProtocolSync   protocol.ID = protoSync
	ProtocolFetch  protocol.ID = protoFetch

	TopicTx    = "tx"
	TopicBlock = "block"
)

// MaxStatusBytes bounds a status message, as the node reads it.
const MaxStatusBytes = maxStatusBytes

// TopicName is the gossip topic of kind (TopicTx, TopicBlock) on the chain
// whose id is chainID.
func TopicName(chainID koinos.Digest, kind string) string {
	return fmt.Sprintf("/ember/%x/%s/1", chainID[:8], kind)
}

// WriteFrame writes a length-prefixed message.
func WriteFrame(w io.Writer, body []byte) error { return writeFrame(w, body) }

// ReadFrame reads a length-prefixed message of at most max bytes.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) { return readFrame(r, max) }

// PackBody flags (and, when large, compresses) a response body.
func PackBody(pb []byte) []byte { return packBody(pb) }

// UnpackBody undoes PackBody, refusing more than max bytes decompressed.
func UnpackBody(b []byte, max int) ([]byte, error) { return unpackBody(b, max) }
