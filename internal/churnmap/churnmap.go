package churnmap

import "iter"

// Map is a map that gives back the room deleted entries leave. The zero
// value is an empty map ready to use. Like a Go map it is not safe for
// concurrent use.
type Map[K comparable, V any] struct {
	m map[K]V
	// deletes counts deletions since m was built: rebuilding when it
	// reaches len(m) copies one entry per deletion at most.
	deletes int
	// ranging counts iterations under way (All): a rebuild waits for
	// them, so that deleting while ranging means what it does for a Go
	// map.
	ranging int
}

// minRebuild keeps a small map from being rebuilt every few deletions.
const minRebuild = 64

// Get returns the value for k and whether it is present.
func (c *Map[K, V]) Get(k K) (V, bool) {
	v, ok := c.m[k]
	return v, ok
}

// Set adds or replaces the value for k.
func (c *Map[K, V]) Set(k K, v V) {
	if c.m == nil {
		c.m = make(map[K]V)
	}
	c.m[k] = v
}

// Delete removes k, if present, and rebuilds the map once enough deletions
// have accumulated.
func (c *Map[K, V]) Delete(k K) {
	n := len(c.m)
	delete(c.m, k)
	if len(c.m) == n {
		return
	}
	c.deletes++
	if c.ranging == 0 && c.deletes >= max(len(c.m), minRebuild) {
		c.rebuild()
	}
}

// Len is the number of entries.
func (c *Map[K, V]) Len() int { return len(c.m) }

// All yields the entries in no particular order. As with a Go map, the
// loop body may delete entries (those not yet reached are then not
// yielded) or add some (which may or may not be yielded).
func (c *Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		c.ranging++
		defer func() { c.ranging-- }()
		for k, v := range c.m {
			if !yield(k, v) {
				return
			}
		}
	}
}

func (c *Map[K, V]) rebuild() {
	fresh := make(map[K]V, len(c.m))
	for k, v := range c.m {
		fresh[k] = v
	}
	c.m, c.deletes = fresh, 0
}
