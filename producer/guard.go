package producer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"

	"github.com/emberchain/ember/internal/atomicfile"
)

// FileGuard is slashing protection on disk: it records the last slot and
// height this key signed, synced before the signature is made, and refuses
// to sign a slot that is not after it. A crash between signing and
// broadcasting therefore cannot lead to a second, different block for the
// same slot after restart: the restarted producer skips that slot.
//
// The record is 20 bytes: slot, height (big-endian uint64) and a CRC-32C,
// written to a temporary file, synced and renamed over the old one, the
// directory synced. A torn or corrupt record is an error at open: the
// operator must decide, because guessing could allow a double signature.
type FileGuard struct {
	path string
	mu   sync.Mutex
	slot uint64
	h    uint64
}

const guardSize = 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenFileGuard opens or creates the guard at path.
func OpenFileGuard(path string) (*FileGuard, error) {
	g := &FileGuard{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return g, nil
	case err != nil:
		return nil, fmt.Errorf("producer: read sign guard: %w", err)
	}
	if len(b) != guardSize || crc32.Checksum(b[:16], crcTable) != binary.BigEndian.Uint32(b[16:]) {
		return nil, fmt.Errorf("producer: sign guard %s is corrupt; it protects against signing a slot twice, so check which slot this key last signed, then delete the file to continue", path)
	}
	g.slot, g.h = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	return g, nil
}

// Last returns the last signed slot and height.
func (g *FileGuard) Last() (slot, height uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.slot, g.h
}

// ErrSlotSigned is returned for a slot at or before the last signed one.
var ErrSlotSigned = errors.New("producer: this key already signed this slot or a later one")

// BeforeSign implements Guard.
func (g *FileGuard) BeforeSign(slot, height uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if slot <= g.slot {
		return fmt.Errorf("%w (slot %d, last signed %d)", ErrSlotSigned, slot, g.slot)
	}
	var b [guardSize]byte
	binary.BigEndian.PutUint64(b[:], slot)
	binary.BigEndian.PutUint64(b[8:], height)
	binary.BigEndian.PutUint32(b[16:], crc32.Checksum(b[:16], crcTable))
	if err := writeSynced(g.path, b[:]); err != nil {
		return &GuardWriteError{Slot: slot, Path: g.path, Err: err}
	}
	g.slot, g.h = slot, height
	return nil
}

// GuardWriteError is a failure to record a slot in the sign guard: the
// disk is full (errors.Is(err, syscall.ENOSPC)) or failing. The record on
// disk is the previous one (the new one is written beside it and renamed
// over it), so nothing was signed and retrying later is safe.
type GuardWriteError struct {
	Slot uint64
	Path string
	Err  error
}

func (e *GuardWriteError) Error() string {
	return fmt.Sprintf("producer: record slot %d in the sign guard %s: %v", e.Slot, e.Path, e.Err)
}

func (e *GuardWriteError) Unwrap() error { return e.Err }

func writeSynced(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
