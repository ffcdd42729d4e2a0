// Package contracts holds Ember's native contracts. Koinos runs its token
// (KOIN) as a WASM contract; Ember runs the same interface natively: the
// entry points, argument and result messages of koilib's utils.tokenAbi, so
// koilib's Contract works against it unmodified. Balances, mana and nonces
// live in one record per account (engine/state).
package contracts
