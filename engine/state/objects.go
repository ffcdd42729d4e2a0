package state

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/emberchain/ember/engine/koinos"
)

// Objects are the rest of Koinos's state beside the token's account
// records: contract storage (each contract's object spaces, zone = the
// contract's id) and the system spaces that hold uploaded contracts. Each
// is addressed by its serialized koinos.chain.database_key, the key the
// store keeps it under and the state merkle root hashes. Within a space
// they are ordered as Koinos's state database orders them: by that
// serialized key (SpacePrefix), so a shorter key comes before a longer one.

// ObjectKey is the serialized database_key of key in an object space.
func ObjectKey(system bool, zone []byte, space uint32, key []byte) []byte {
	return koinos.StateKey{System: system, Zone: zone, Space: space, Key: key}.DatabaseKey()
}

// SpacePrefix is the byte prefix every ObjectKey of one space starts with,
// and nothing else's: a database_key is its space's message, length
// delimited, then the key; the space's encoding with an empty key is
// exactly that first field.
func SpacePrefix(system bool, zone []byte, space uint32) []byte {
	return ObjectKey(system, zone, space, nil)
}

// MaxObjectKey bounds the serialized database key of an object, so that
// nothing outside data chooses unbounded map keys (Koinos bounds keys by
// its system-call argument size; its state database key is the same
// serialized message).
const MaxObjectKey = 1 << 10

// ErrObjectKey reports a key that is empty or too long.
var ErrObjectKey = errors.New("state: object key out of bounds")

// objectValue is one object as a layer holds it: a value, or a removal
// that hides what the layers below hold.
type objectValue struct {
	value   []byte
	removed bool
}

// objectStore is Base's part for objects. dirty holds what changed since
// the last checkpoint; pending what the last TakeDirty handed to the
// store, until the next one, so that readers find it while the store's
// commit may not have landed (the chain commits each checkpoint before it
// takes the next); cached is a bounded cache of what the store holds.
type objectStore struct {
	mu      sync.RWMutex
	dirty   map[string]objectValue
	pending map[string]objectValue
	cached  map[string]objectValue
	// merges counts mergeObjects calls: a reader that went to the store
	// caches what it read only if no merge happened meanwhile, so the
	// cache never holds a value older than a merged one.
	merges uint64
}

func newObjectStore() objectStore {
	return objectStore{dirty: map[string]objectValue{}, pending: map[string]objectValue{}, cached: map[string]objectValue{}}
}

// maxCachedObjects bounds the clean objects Base keeps.
const maxCachedObjects = 1 << 16

// lookupLocked finds an object in memory, newest first.
func (o *objectStore) lookupLocked(k string) (objectValue, bool) {
	if v, ok := o.dirty[k]; ok {
		return v, true
	}
	if v, ok := o.pending[k]; ok {
		return v, true
	}
	v, ok := o.cached[k]
	return v, ok
}

// Object returns the irreversible value of an object.
func (b *Base) Object(key []byte) ([]byte, bool, error) {
	o := &b.objects
	o.mu.RLock()
	e, ok := o.lookupLocked(string(key))
	merges := o.merges
	o.mu.RUnlock()
	if ok {
		return e.value, !e.removed, nil
	}
	v, found, err := b.store.GetState(key)
	if err != nil {
		return nil, false, fmt.Errorf("state: read object: %w", err)
	}
	o.mu.Lock()
	if o.merges == merges {
		if len(o.cached) >= maxCachedObjects {
			clear(o.cached) // objects are few next to accounts; refilled on demand
		}
		o.cached[string(key)] = objectValue{value: v, removed: !found}
	} else if e, ok := o.lookupLocked(string(key)); ok {
		v, found = e.value, !e.removed // merged meanwhile: newer
	}
	o.mu.Unlock()
	return v, found, nil
}

// seekObject is the irreversible neighbour of from within the space
// prefix: the first key after it (before it, when reverse), merging the
// store with the changes it may not have yet.
func (b *Base) seekObject(prefix, from []byte, reverse bool) (key, value []byte, found bool, err error) {
	cur := from
	for {
		k, v, ok, err := b.store.SeekState(prefix, cur, reverse)
		if err != nil {
			return nil, nil, false, fmt.Errorf("state: seek object: %w", err)
		}
		o := &b.objects
		o.mu.RLock()
		var best []byte
		var bestVal objectValue
		consider := func(ck string, cv objectValue) {
			c := []byte(ck)
			if !bytes.HasPrefix(c, prefix) || !beyond(c, cur, reverse) {
				return
			}
			if best == nil || beyond(best, c, reverse) {
				best, bestVal = c, cv
			}
		}
		for ck, e := range o.dirty {
			consider(ck, e)
		}
		for ck, p := range o.pending {
			if _, ok := o.dirty[ck]; !ok {
				consider(ck, p)
			}
		}
		o.mu.RUnlock()
		switch {
		case ok && (best == nil || beyond(best, k, reverse)):
			return k, v, true, nil // the store's key comes first
		case best != nil && !bestVal.removed:
			return best, bestVal.value, true, nil
		case best != nil:
			cur = best // removed since the checkpoint: look past it
		default:
			return nil, nil, false, nil
		}
	}
}

// beyond reports whether a lies after b in the scan's direction.
func beyond(a, b []byte, reverse bool) bool {
	c := bytes.Compare(a, b)
	if reverse {
		return c < 0
	}
	return c > 0
}

// mergeObjects folds a delta's objects into the base.
func (b *Base) mergeObjects(d *Delta) {
	if len(d.objects) == 0 {
		return
	}
	o := &b.objects
	o.mu.Lock()
	o.merges++
	for k, v := range d.objects {
		o.dirty[k] = v
		delete(o.cached, k)
	}
	o.mu.Unlock()
}

// SetObject writes an object straight into the base, for genesis.
func (b *Base) SetObject(key, value []byte) {
	o := &b.objects
	o.mu.Lock()
	o.merges++
	o.dirty[string(key)] = objectValue{value: bytes.Clone(value)}
	delete(o.cached, string(key))
	o.mu.Unlock()
}

// takeDirtyObjects appends the objects changed since the last call as
// checkpoint writes and keeps them as pending until the next call.
func (b *Base) takeDirtyObjects(out []koinos.DeltaEntry) []koinos.DeltaEntry {
	o := &b.objects
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, e := range o.dirty {
		out = append(out, koinos.DeltaEntry{DatabaseKey: []byte(k), Value: e.value, Removed: e.removed})
	}
	o.pending, o.dirty = o.dirty, o.pending
	clear(o.dirty)
	return out
}

// Object returns an object's value at this delta.
func (d *Delta) Object(key []byte) ([]byte, bool, error) {
	for cur := d; cur != nil; cur = cur.parent.Load() {
		if v, ok := cur.objects[string(key)]; ok {
			return v.value, !v.removed, nil
		}
	}
	return d.base.Object(key)
}

// PutObject writes an object. The caller bounds key and value.
func (d *Delta) PutObject(key, value []byte) error {
	if len(key) == 0 || len(key) > MaxObjectKey {
		return ErrObjectKey
	}
	d.setObject(string(key), objectValue{value: bytes.Clone(value)})
	return nil
}

// RemoveObject removes an object; removing a missing one is a no-op write
// (Koinos's state database records it too).
func (d *Delta) RemoveObject(key []byte) error {
	if len(key) == 0 || len(key) > MaxObjectKey {
		return ErrObjectKey
	}
	d.setObject(string(key), objectValue{removed: true})
	return nil
}

func (d *Delta) setObject(k string, v objectValue) {
	if d.frozen {
		panic(errFrozen) // a bug in the engine, never input-driven
	}
	if d.objects == nil {
		d.objects = make(map[string]objectValue)
	}
	prev, had := d.objects[k]
	d.journal = append(d.journal, undo{isObject: true})
	d.objJournal = append(d.objJournal, objectUndo{key: k, prev: prev, had: had})
	d.objects[k] = v
}

// NextObject returns the first object after key in the space whose
// SpacePrefix is prefix (key is a full ObjectKey, or the prefix itself
// for the space's first object).
func (d *Delta) NextObject(prefix, key []byte) (k, value []byte, found bool, err error) {
	return d.seekObject(prefix, key, false)
}

// PrevObject returns the last object before key in the space.
func (d *Delta) PrevObject(prefix, key []byte) (k, value []byte, found bool, err error) {
	return d.seekObject(prefix, key, true)
}

// seekObject merges the layers: the nearest key any layer holds wins, and
// when the topmost layer holding it says removed, the scan goes on past
// it. Each layer's map is scanned whole: deltas hold one block's writes.
func (d *Delta) seekObject(prefix, from []byte, reverse bool) ([]byte, []byte, bool, error) {
	if len(prefix) == 0 {
		return nil, nil, false, ErrObjectKey
	}
	cur := from
	for {
		var best []byte
		for l := d; l != nil; l = l.parent.Load() {
			for ck := range l.objects {
				c := []byte(ck)
				if bytes.HasPrefix(c, prefix) && beyond(c, cur, reverse) && (best == nil || beyond(best, c, reverse)) {
					best = c
				}
			}
		}
		bk, bv, bok, err := d.base.seekObject(prefix, cur, reverse)
		if err != nil {
			return nil, nil, false, err
		}
		if bok && (best == nil || !beyond(bk, best, reverse)) {
			if best == nil || !bytes.Equal(bk, best) {
				return bk, bv, true, nil
			}
		}
		if best == nil {
			return nil, nil, false, nil
		}
		// The delta layers' candidate (the base's is the same key or later):
		// its topmost value decides.
		v, ok, err := d.Object(best)
		if err != nil {
			return nil, nil, false, err
		}
		if ok {
			return best, v, true, nil
		}
		cur = best
	}
}
