package state

import (
	"bytes"
	"slices"
)

// MapStorage is a Storage over a map from serialized database key to
// value: the checkpoint of a chain that never wrote one, and the reference
// the store's ordered reads are tested against.
type MapStorage map[string][]byte

// GetState implements Storage.
func (m MapStorage) GetState(key []byte) ([]byte, bool, error) {
	v, ok := m[string(key)]
	return v, ok, nil
}

// SeekState implements Storage by a scan of the whole map.
func (m MapStorage) SeekState(prefix, from []byte, reverse bool) (key, value []byte, found bool, err error) {
	keys := make([][]byte, 0, len(m))
	for k := range m {
		if kb := []byte(k); bytes.HasPrefix(kb, prefix) && beyond(kb, from, reverse) {
			keys = append(keys, kb)
		}
	}
	if len(keys) == 0 {
		return nil, nil, false, nil
	}
	best := slices.MinFunc(keys, bytes.Compare)
	if reverse {
		best = slices.MaxFunc(keys, bytes.Compare)
	}
	return best, m[string(best)], true, nil
}
