package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/internal/atomicfile"
)

// An identity file holds the node's libp2p key: the protobuf encoding of
// an Ed25519 private key (crypto.MarshalPrivateKey), mode 0600. The peer id
// other nodes dial (…/p2p/<id>) is derived from it.

// maxIdentityBytes bounds what is read from an identity file.
const maxIdentityBytes = 4096

// NewIdentity returns a fresh Ed25519 identity key.
func NewIdentity() (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: generate identity key: %w", err)
	}
	return k, nil
}

// SaveIdentity writes k to path with mode 0600 (crash-safe), creating the
// directory with mode 0700.
func SaveIdentity(path string, k crypto.PrivKey) error {
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return fmt.Errorf("p2p: encode identity key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

// LoadIdentity reads the identity key at path. It refuses a file that the
// group or others can read, as the producer key is refused: a copied
// identity lets another machine pose as this node.
func LoadIdentity(path string) (crypto.PrivKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("p2p: identity key %s has mode %v; it must be readable by its owner only (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	if fi.Size() > maxIdentityBytes {
		return nil, fmt.Errorf("p2p: identity key %s is %d bytes, not a key file", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key %s is not a libp2p private key: %w", path, err)
	}
	if err := checkKeyPair(k); err != nil {
		return nil, fmt.Errorf("p2p: identity key %s is corrupt (%v): peers would reject everything this node signs; restore it from a backup, or delete it to make a new identity (the peer id changes)", path, err)
	}
	return k, nil
}

// checkKeyPair signs with k and verifies with its public key. An Ed25519
// file holds the seed and the public key side by side: a flipped byte in
// either still parses, and the node would then gossip signatures no peer
// accepts.
func checkKeyPair(k crypto.PrivKey) error {
	msg := []byte("ember identity key check")
	sig, err := k.Sign(msg)
	if err != nil {
		return err
	}
	ok, err := k.GetPublic().Verify(msg, sig)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("its public half does not match its private half")
	}
	return nil
}

// LoadOrCreateIdentity reads the identity key at path, creating it first if
// the file does not exist.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	k, err := LoadIdentity(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = NewIdentity(); err != nil {
		return nil, err
	}
	if err := SaveIdentity(path, k); err != nil {
		return nil, err
	}
	return k, nil
}

// PeerID is the peer id of an identity key.
func PeerID(k crypto.PrivKey) (peer.ID, error) {
	return peer.IDFromPrivateKey(k)
}
