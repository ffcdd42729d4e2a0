package chain

// Storage is what the engine needs from disk. The store package implements
// it over Pebble; tests use a map. Reads may be called from any goroutine.
type Storage interface {
	// GetState returns the checkpointed value of a state key (a serialized
	// koinos.chain.database_key), or found=false.
	GetState(key []byte) (value []byte, found bool, err error)
	// LoadMeta returns the chain metadata, or found=false on a new store.
	LoadMeta() (meta Meta, found bool, err error)
	// CanonicalBlock returns the irreversible block at a height.
	CanonicalBlock(height uint64) (*BlockEntry, error)
	// BlocksAbove calls fn for every stored block with a height above h,
	// on every fork, in ascending height order, until fn returns an error.
	BlocksAbove(h uint64, fn func(*BlockEntry) error) error
}
