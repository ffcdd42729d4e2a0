// Package koinos holds the consensus rules Ember shares bit for bit with
// Koinos: multihash ids, the merkle tree with odd-node promotion, the
// transaction/operation/state merkle roots, 25-byte base58check addresses
// and the value_type nonce encoding.
//
// Everything here is a pure function over bytes or generated protobuf
// types; nothing allocates more than the result needs, because these run
// once or twice per transaction on the hot path.
//
// Hashing serializes with the vtprotobuf marshalers. For the messages that
// are hashed (headers, operations, database keys) their output is the
// canonical protobuf encoding: fields in ascending number, proto3 defaults
// omitted. That is what koinos-proto (C++), koinos-proto-golang and koilib's
// protobufjs produce, so ids agree across implementations; canonical_test.go
// checks it against google.golang.org/protobuf and fixed koilib vectors.
package koinos
