package state

import (
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/emberchain/ember/engine/koinos"
	emberpb "github.com/emberchain/ember/proto/ember"
)

// Object spaces of Ember's state (koinos.chain.object_space ids, all
// system spaces with an empty zone). Koinos keeps balances in the token
// contract's space and nonces in system space 4; Ember keeps one record per
// account instead (docs/protocol.md), so a transfer touches two keys.
const (
	SpaceMetadata uint32 = 0
	SpaceAccounts uint32 = 100
)

// KeyTokenSupply is the metadata key of the token's total supply.
const KeyTokenSupply = "ember.token_supply"

// Account is one account's record: its token balance, its mana (resource
// credits) as of ManaUpdatedMs, and the last nonce it used.
type Account struct {
	Balance       uint64
	Mana          uint64
	ManaUpdatedMs uint64
	Nonce         uint64
}

// CurrentMana is the account's mana at time nowMs: it regenerates linearly
// toward the balance over regenMs (Koinos's KOIN rule) and never exceeds the
// balance.
func (a Account) CurrentMana(nowMs, regenMs uint64) uint64 {
	mana := min(a.Mana, a.Balance)
	if nowMs <= a.ManaUpdatedMs || mana == a.Balance {
		return mana
	}
	dt := nowMs - a.ManaUpdatedMs
	if dt >= regenMs {
		return a.Balance
	}
	// balance*dt/regenMs in 128 bits: balance*dt overflows 64 bits for
	// large balances.
	hi, lo := bits.Mul64(a.Balance, dt)
	q, _ := bits.Div64(hi, lo, regenMs) // hi < regenMs because dt < regenMs
	if q >= a.Balance-mana {
		return a.Balance
	}
	return mana + q
}

// Encode appends the serialized ember.account record.
func (a Account) Encode(dst []byte) []byte {
	// Hand-rolled canonical protobuf (fields 1-4, varint, zero omitted): it
	// runs for every changed account of every block, and equals what
	// emberpb.Account.MarshalVT produces (account_test.go checks).
	put := func(tag byte, v uint64) {
		if v != 0 {
			dst = append(dst, tag)
			dst = binary.AppendUvarint(dst, v)
		}
	}
	put(1<<3, a.Balance)
	put(2<<3, a.Mana)
	put(3<<3, a.ManaUpdatedMs)
	put(4<<3, a.Nonce)
	return dst
}

// ErrRecord reports a stored record that does not decode.
var ErrRecord = errors.New("state: corrupt account record")

// DecodeAccount parses a serialized ember.account.
func DecodeAccount(b []byte) (Account, error) {
	var m emberpb.Account
	if err := m.UnmarshalVT(b); err != nil {
		return Account{}, ErrRecord
	}
	return Account{Balance: m.Balance, Mana: m.Mana, ManaUpdatedMs: m.ManaUpdatedMs, Nonce: m.Nonce}, nil
}

// AccountKey is the serialized database_key of an account record.
func AccountKey(a koinos.Address) []byte {
	return appendAccountKey(make([]byte, 0, len(accountKeyPrefix)+koinos.AddressSize), a)
}

// accountKeyPrefix is the serialized database_key of an account without
// its address: the address is the last field and has a fixed size, so
// every account key is this prefix followed by it (TestAccountKeyLayout).
var accountKeyPrefix = func() []byte {
	k := koinos.StateKey{System: true, Space: SpaceAccounts, Key: make([]byte, koinos.AddressSize)}.DatabaseKey()
	return k[:len(k)-koinos.AddressSize]
}()

// appendAccountKey appends AccountKey(a), without the protobuf encoder.
func appendAccountKey(dst []byte, a koinos.Address) []byte {
	dst = append(dst, accountKeyPrefix...)
	return append(dst, a[:]...)
}

// SupplyKey is the serialized database_key of the token supply.
func SupplyKey() []byte {
	return koinos.StateKey{System: true, Space: SpaceMetadata, Key: []byte(KeyTokenSupply)}.DatabaseKey()
}

// EncodeSupply is the stored form of the supply: a uint64 varint.
func EncodeSupply(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// DecodeSupply parses EncodeSupply's output.
func DecodeSupply(b []byte) (uint64, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) {
		return 0, errors.New("state: corrupt token supply record")
	}
	return v, nil
}
