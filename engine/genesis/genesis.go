package genesis

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // contract ids are hash160 addresses, as in Koinos

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/state"
	emberpb "github.com/emberchain/ember/proto/ember"
	"github.com/emberchain/ember/proto/kjson"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// Defaults for a new chain. They favour throughput on one machine: blocks
// may hold far more than Koinos's 1 MiB, because Ember's verifier and store
// are built for it.
const (
	DefaultBlockIntervalMs     = 1000
	DefaultManaRegenMs         = 5 * 24 * 3600 * 1000 // Koinos: 5 days
	DefaultMaxBlockTxs         = 100_000
	DefaultMaxTxBytes          = 64 << 10
	DefaultMaxOperations       = 16
	DefaultMaxSignatures       = 8
	DefaultMaxClockDriftMs     = 5000 // Koinos: 5 s
	DefaultNetworkLimit        = 64 << 20
	DefaultDiskLimit           = 16 << 20
	DefaultComputeLimit        = 1_000_000_000 // 100,000 transfers use 450,000,000; contracts share the rest
	DefaultNetworkCost         = 1000
	DefaultDiskCost            = 2000
	DefaultComputeCost         = 10
	DefaultTokenDecimals       = 8
	DefaultComputeTxBase       = 1000
	DefaultComputeOperation    = 500
	DefaultComputeTransfer     = 2000
	DefaultComputeRead         = 200
	DefaultComputeSignature    = 1000
	maxChainNameLen            = 64
	maxProducers               = 1024
	maxTokenTextLen            = 256
	maxGenesisBalances         = 1 << 20
	minBlockIntervalMs         = 10
	maxBlockIntervalMs         = 3_600_000
	tokenMetadataKeyParameters = "ember.chain_parameters"
)

// Genesis is a checked genesis file.
type Genesis struct {
	msg *emberpb.Genesis
	// Derived once: the genesis_data entries, their serialization and hash.
	data    *chainpb.GenesisData
	chainID koinos.Digest
}

// Parse reads a genesis file (kjson of ember.genesis) and checks it.
func Parse(b []byte) (*Genesis, error) {
	var m emberpb.Genesis
	if err := kjson.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	return New(&m)
}

// New checks m and derives the chain id. m must not be modified afterwards.
func New(m *emberpb.Genesis) (*Genesis, error) {
	if err := validate(m); err != nil {
		return nil, err
	}
	g := &Genesis{msg: m}
	g.data = g.buildData()
	b, err := g.data.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("genesis: serialize: %w", err)
	}
	g.chainID = koinos.Sum256(b)
	return g, nil
}

// Encode returns the genesis file text.
func (g *Genesis) Encode() ([]byte, error) {
	b, err := kjson.Marshal(g.msg)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Message returns the genesis message. Callers must not modify it.
func (g *Genesis) Message() *emberpb.Genesis { return g.msg }

// Params returns the chain parameters. Callers must not modify them.
func (g *Genesis) Params() *emberpb.ChainParameters { return g.msg.Parameters }

// ChainID is the digest whose multihash is the chain id.
func (g *Genesis) ChainID() koinos.Digest { return g.chainID }

// Data is the Koinos genesis_data this file stands for.
func (g *Genesis) Data() *chainpb.GenesisData { return g.data }

// Balances are the initial balances, sorted by address.
func (g *Genesis) Balances() []*emberpb.GenesisBalance { return g.msg.Balances }

// TokenID is the contract id of the native token.
func (g *Genesis) TokenID() koinos.Address {
	a, _ := koinos.ParseAddress(g.msg.Parameters.Token.ContractId)
	return a
}

// Producers are the block producers in schedule order.
func (g *Genesis) Producers() []koinos.Address {
	out := make([]koinos.Address, len(g.msg.Parameters.Producers))
	for i, p := range g.msg.Parameters.Producers {
		out[i], _ = koinos.ParseAddress(p)
	}
	return out
}

// TotalSupply is the sum of the initial balances.
func (g *Genesis) TotalSupply() uint64 {
	var s uint64
	for _, b := range g.msg.Balances {
		s += b.Amount // validate checked that this cannot overflow
	}
	return s
}

// State returns the initial state: the genesis entries as state writes, in
// genesis_data order, and the state merkle root over them, which block 1
// carries as previous_state_merkle_root.
func (g *Genesis) State() (writes []koinos.DeltaEntry, root koinos.Digest) {
	for _, e := range g.data.Entries {
		k := koinos.StateKey{System: e.Space.GetSystem(), Zone: e.Space.GetZone(), Space: e.Space.GetId(), Key: e.Key}
		writes = append(writes, koinos.DeltaEntry{DatabaseKey: k.DatabaseKey(), Value: e.Value})
	}
	root = koinos.StateMerkleRoot(slices.Clone(writes))
	return writes, root
}

func (g *Genesis) buildData() *chainpb.GenesisData {
	p := g.msg.Parameters
	pb, _ := p.MarshalVT()
	meta := &chainpb.ObjectSpace{System: true, Id: state.SpaceMetadata}
	entries := []*chainpb.GenesisEntry{
		{Space: meta, Key: []byte(tokenMetadataKeyParameters), Value: pb},
		{Space: meta, Key: []byte(state.KeyTokenSupply), Value: state.EncodeSupply(g.TotalSupply())},
	}
	accounts := &chainpb.ObjectSpace{System: true, Id: state.SpaceAccounts}
	for _, b := range g.msg.Balances {
		acct := state.Account{Balance: b.Amount, Mana: b.Amount, ManaUpdatedMs: p.GenesisTimeMs}
		entries = append(entries, &chainpb.GenesisEntry{Space: accounts, Key: b.Address, Value: acct.Encode(nil)})
	}
	return &chainpb.GenesisData{Entries: entries}
}

// validate checks every parameter, fills nothing in, and sorts balances
// by address so the encoding is canonical.
func validate(m *emberpb.Genesis) error {
	p := m.GetParameters()
	if p == nil {
		return errors.New("genesis: parameters are missing")
	}
	if n := len(p.ChainName); n == 0 || n > maxChainNameLen {
		return fmt.Errorf("genesis: parameters.chain_name must be 1 to %d characters", maxChainNameLen)
	}
	if p.GenesisTimeMs == 0 {
		return errors.New("genesis: parameters.genesis_time_ms must be set (milliseconds since the Unix epoch)")
	}
	if p.BlockIntervalMs < minBlockIntervalMs || p.BlockIntervalMs > maxBlockIntervalMs {
		return fmt.Errorf("genesis: parameters.block_interval_ms must be between %d and %d", minBlockIntervalMs, maxBlockIntervalMs)
	}
	if len(p.Producers) == 0 || len(p.Producers) > maxProducers {
		return fmt.Errorf("genesis: parameters.producers must list 1 to %d addresses", maxProducers)
	}
	seen := map[koinos.Address]bool{}
	for i, b := range p.Producers {
		a, err := koinos.ParseAddress(b)
		if err != nil {
			return fmt.Errorf("genesis: parameters.producers[%d]: %w", i, err)
		}
		if seen[a] {
			return fmt.Errorf("genesis: parameters.producers[%d]: %s is listed twice", i, a)
		}
		seen[a] = true
	}
	t := p.Token
	if t == nil {
		return errors.New("genesis: parameters.token is missing")
	}
	if _, err := koinos.ParseAddress(t.ContractId); err != nil {
		return fmt.Errorf("genesis: parameters.token.contract_id: %w", err)
	}
	if len(t.Authority) > 0 {
		if _, err := koinos.ParseAddress(t.Authority); err != nil {
			return fmt.Errorf("genesis: parameters.token.authority: %w", err)
		}
	}
	if t.Name == "" || t.Symbol == "" || len(t.Name) > maxTokenTextLen || len(t.Symbol) > maxTokenTextLen || len(t.Description) > maxTokenTextLen {
		return fmt.Errorf("genesis: parameters.token.name and symbol must be 1 to %d characters", maxTokenTextLen)
	}
	if t.Decimals > 18 {
		return errors.New("genesis: parameters.token.decimals must be at most 18")
	}
	if p.ManaRegenMs == 0 {
		return errors.New("genesis: parameters.mana_regen_ms must be above 0")
	}
	r := p.Resources
	if r == nil || r.NetworkBandwidthLimit == 0 || r.ComputeBandwidthLimit == 0 || r.DiskStorageLimit == 0 {
		return errors.New("genesis: parameters.resources must set disk_storage_limit, network_bandwidth_limit and compute_bandwidth_limit above 0")
	}
	l := p.Limits
	if l == nil || l.MaxBlockTransactions == 0 || l.MaxTransactionBytes == 0 || l.MaxOperationsPerTransaction == 0 || l.MaxSignaturesPerTransaction == 0 {
		return errors.New("genesis: parameters.limits must set every max_* above 0")
	}
	if l.MaxTransactionBytes > r.NetworkBandwidthLimit {
		return errors.New("genesis: parameters.limits.max_transaction_bytes is above resources.network_bandwidth_limit, so such a transaction could never fit in a block")
	}
	if p.Compute == nil {
		return errors.New("genesis: parameters.compute is missing")
	}
	if len(m.Balances) > maxGenesisBalances {
		return fmt.Errorf("genesis: at most %d balances", maxGenesisBalances)
	}
	var total uint64
	addrs := map[koinos.Address]bool{}
	for i, b := range m.Balances {
		a, err := koinos.ParseAddress(b.Address)
		if err != nil {
			return fmt.Errorf("genesis: balances[%d].address: %w", i, err)
		}
		if addrs[a] {
			return fmt.Errorf("genesis: balances[%d]: %s has two balances", i, a)
		}
		addrs[a] = true
		var carry uint64
		total, carry = bits.Add64(total, b.Amount, 0)
		if carry != 0 {
			return errors.New("genesis: the balances add up to more than 2^64-1")
		}
	}
	slices.SortFunc(m.Balances, func(a, b *emberpb.GenesisBalance) int { return bytes.Compare(a.Address, b.Address) })
	return nil
}

// DevOptions configure a development chain.
type DevOptions struct {
	ChainName       string
	Producers       []koinos.Address
	Balances        map[koinos.Address]uint64
	TokenAuthority  koinos.Address // zero: no one can mint
	BlockIntervalMs uint64         // 0: DefaultBlockIntervalMs
	Now             time.Time
}

// Dev builds a genesis with the default parameters.
func Dev(o DevOptions) (*Genesis, error) {
	interval := o.BlockIntervalMs
	if interval == 0 {
		interval = DefaultBlockIntervalMs
	}
	name := o.ChainName
	if name == "" {
		name = "ember-dev"
	}
	p := &emberpb.ChainParameters{
		ChainName:       name,
		GenesisTimeMs:   uint64(o.Now.UnixMilli()),
		BlockIntervalMs: interval,
		Token: &emberpb.TokenInfo{
			ContractId:  ContractID(name + "/token").Bytes(),
			Name:        "Ember",
			Symbol:      "EMB",
			Decimals:    DefaultTokenDecimals,
			Description: "Ember native token",
		},
		ManaRegenMs: DefaultManaRegenMs,
		Resources: &chainpb.ResourceLimitData{
			DiskStorageLimit:      DefaultDiskLimit,
			DiskStorageCost:       DefaultDiskCost,
			NetworkBandwidthLimit: DefaultNetworkLimit,
			NetworkBandwidthCost:  DefaultNetworkCost,
			ComputeBandwidthLimit: DefaultComputeLimit,
			ComputeBandwidthCost:  DefaultComputeCost,
		},
		Limits: &emberpb.BlockLimits{
			MaxBlockTransactions:        DefaultMaxBlockTxs,
			MaxTransactionBytes:         DefaultMaxTxBytes,
			MaxOperationsPerTransaction: DefaultMaxOperations,
			MaxSignaturesPerTransaction: DefaultMaxSignatures,
			MaxClockDriftMs:             DefaultMaxClockDriftMs,
		},
		Compute: &emberpb.ComputeCosts{
			TransactionBase: DefaultComputeTxBase,
			OperationBase:   DefaultComputeOperation,
			TokenTransfer:   DefaultComputeTransfer,
			TokenRead:       DefaultComputeRead,
			Signature:       DefaultComputeSignature,
		},
	}
	for _, a := range o.Producers {
		p.Producers = append(p.Producers, a.Bytes())
	}
	if !o.TokenAuthority.IsZero() {
		p.Token.Authority = o.TokenAuthority.Bytes()
	}
	m := &emberpb.Genesis{Parameters: p}
	for a, v := range o.Balances {
		m.Balances = append(m.Balances, &emberpb.GenesisBalance{Address: a.Bytes(), Amount: v})
	}
	return New(m)
}

// ContractID derives a contract id from a name: the Koinos address form
// around ripemd160(sha256(name)). Dev chains name their token this way so
// that two dev chains with the same name share a token id.
func ContractID(name string) koinos.Address {
	h := sha256.Sum256([]byte(name))
	r := ripemd160.New()
	r.Write(h[:])
	var h160 [20]byte
	r.Sum(h160[:0])
	return koinos.AddressFromHash160(h160)
}
