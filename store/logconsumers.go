package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The log's consumers: registered by name, each with a cursor on disk.

// cursorValue is a consumer's cursor on disk: the next sequence number it
// reads, and eight bytes the consumer owns (the indexer keeps the height
// its account history reached), and flags.
type cursorValue struct {
	next  uint64
	aux   uint64
	flags byte
}

const (
	cursorSize = 8 + 8 + 1
	// cursorRebuilding marks an index whose rebuild (Reindex) has not
	// finished: the indexes are incomplete until it is run again.
	cursorRebuilding = 1 << 0
)

func cursorKey(name string) []byte {
	return append([]byte{spaceCursor}, name...)
}

func encodeCursor(dst []byte, c cursorValue) []byte {
	dst = binary.BigEndian.AppendUint64(dst, c.next)
	dst = binary.BigEndian.AppendUint64(dst, c.aux)
	return append(dst, c.flags)
}

func decodeCursor(v []byte) (cursorValue, error) {
	if len(v) != cursorSize || v[16]&^cursorRebuilding != 0 {
		return cursorValue{}, corrupt("consumer cursor of %d bytes", len(v))
	}
	return cursorValue{next: binary.BigEndian.Uint64(v), aux: binary.BigEndian.Uint64(v[8:]), flags: v[16]}, nil
}

// maxConsumerName bounds a consumer's name (its key).
const maxConsumerName = 64

// RegisterConsumer makes name a registered consumer of the log and returns
// its cursor: the next sequence number it reads. A new consumer starts at
// the end of the log (it sees events committed from now on); one
// registered before resumes where it confirmed. Retention keeps what a
// registered consumer has not confirmed, up to the log's cap.
func (s *Store) RegisterConsumer(name string) (uint64, error) {
	if name == "" || len(name) > maxConsumerName {
		return 0, fmt.Errorf("store: consumer name %q: want 1 to %d bytes", name, maxConsumerName)
	}
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	// Under the commit lock, so no record lands between reading the end
	// and registering it.
	s.mu.Lock()
	defer s.mu.Unlock()
	c, found, err := s.loadCursor(name)
	if err != nil {
		return 0, err
	}
	if !found {
		c = cursorValue{next: s.state.Load().nextSeq}
		if err := s.db.Set(cursorKey(name), encodeCursor(nil, c), pebble.Sync); err != nil {
			return 0, fmt.Errorf("store: register consumer %s: %w", name, err)
		}
	}
	s.elog.mu.Lock()
	s.elog.consumers[name] = c.next
	s.elog.mu.Unlock()
	return c.next, nil
}

// ConfirmLog moves a registered consumer's cursor to next: it has handled
// every record before it. The write is not synced; after a machine crash
// the consumer may see some records again (delivery is at least once).
func (s *Store) ConfirmLog(name string, next uint64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.elog.mu.Lock()
	cur, ok := s.elog.consumers[name]
	s.elog.mu.Unlock()
	if !ok {
		return fmt.Errorf("store: consumer %s is not registered", name)
	}
	if next < cur || next > s.state.Load().nextSeq {
		return fmt.Errorf("store: consumer %s confirms %d; its cursor is %d and the log ends at %d", name, next, cur, s.state.Load().nextSeq)
	}
	if err := s.db.Set(cursorKey(name), encodeCursor(nil, cursorValue{next: next}), pebble.NoSync); err != nil {
		return fmt.Errorf("store: confirm %s: %w", name, err)
	}
	s.elog.mu.Lock()
	s.elog.consumers[name] = next
	s.elog.mu.Unlock()
	return nil
}

func (s *Store) loadCursor(name string) (cursorValue, bool, error) {
	var c cursorValue
	err := with(s.db, cursorKey(name), func(v []byte) error {
		var err error
		c, err = decodeCursor(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("store: cursor of %s: %w", name, err)
	}
	return c, true, nil
}

// RewindConsumer moves a registered consumer's cursor to from, back or
// forth, for a replay: from must be retained (at or after the log's first
// record) and at most the log's end. The write is synced.
func (s *Store) RewindConsumer(name string, from uint64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	next := s.state.Load().nextSeq
	s.elog.mu.Lock()
	_, ok := s.elog.consumers[name]
	first := s.elog.first
	s.elog.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("store: consumer %s is not registered", name)
	case from < first:
		return &LogGapError{From: from, First: first}
	case from > next:
		return fmt.Errorf("store: replay from %d, past the log's end %d", from, next)
	}
	if err := s.db.Set(cursorKey(name), encodeCursor(nil, cursorValue{next: from}), pebble.Sync); err != nil {
		return fmt.Errorf("store: rewind %s: %w", name, err)
	}
	s.elog.mu.Lock()
	s.elog.consumers[name] = from
	s.elog.mu.Unlock()
	return nil
}
