// Package genesis reads, checks and builds Ember genesis files, and turns
// them into the Koinos genesis_data whose hash is the chain id.
//
// The file is an ember.genesis message in the Koinos JSON encoding (kjson):
// chain parameters and initial balances. It maps to genesis_data
// deterministically: one metadata entry holding the serialized parameters,
// one entry for the token supply, then one account entry per balance, sorted
// by address. The chain id is the sha2-256 multihash of that serialization,
// so two nodes agree on a chain id exactly when they agree on every
// parameter and balance.
package genesis
